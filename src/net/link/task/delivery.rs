//! Channel messages to the caller once each and in seq order: live ones that arrive ahead of
//! a gap wait while the gap is filled from history.

use super::*;

impl LinkTask {
    pub(super) async fn on_message(
        &mut self,
        message: ChatMessage,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        let Some(state) = self.channels.get_mut(&message.channel) else {
            return Ok(());
        };
        let Some(delivered) = state.delivered else {
            // Not joined yet on this connection's terms: the join answer sets the start.
            return Ok(());
        };
        if message.seq <= delivered {
            return Ok(());
        }
        if state.filling || message.seq > delivered + 1 {
            if state.ahead.len() < MAX_GAP_BUFFER {
                state.ahead.insert(message.seq, message.clone());
            }
            if !state.filling {
                let channel = message.channel.clone();
                self.fill_gap(&channel, outbox);
            }
            return Ok(());
        }
        self.deliver_in_order(message).await
    }

    /// Delivers `message` if it is the next one of its channel, dropping duplicates.
    pub(super) async fn deliver_in_order(&mut self, message: ChatMessage) -> Result<(), Ended> {
        let Some(state) = self.channels.get_mut(&message.channel) else {
            return Ok(());
        };
        let delivered = state.delivered.unwrap_or(0);
        if message.seq <= delivered {
            return Ok(());
        }
        state.delivered = Some(message.seq);
        state.ahead.remove(&message.seq);
        self.emit(LinkEvent::Message(message)).await
    }

    pub(super) fn fill_gap(&mut self, channel: &Name, outbox: &mut VecDeque<ClientFrame>) {
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        state.filling = true;
        let frame = ClientFrame::History {
            id: 0,
            channel: channel.clone(),
            after: state.delivered,
            before: None,
            limit: MAX_HISTORY_PAGE,
            thread: None,
        };
        let frame = self.queue_internal(
            frame,
            Purpose::GapFill {
                channel: channel.clone(),
            },
        );
        outbox.push_back(frame);
    }
}
