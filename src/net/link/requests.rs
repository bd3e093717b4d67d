//! The link's requests that read (channels, history, threads, search, who) and those about
//! this user's machines: each one frame out, one typed answer back.

use super::*;

impl LinkHandle {
    /// Every channel this user may see, fetched a page at a time.
    pub async fn list_channels(&self) -> Result<Vec<ChannelInfo>, LinkError> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map(|c: &ChannelInfo| c.name.clone());
            let page = self.list_channels_page(after, None).await?;
            all.extend(page.channels);
            if !page.more {
                return Ok(all);
            }
        }
    }

    /// One page of the channels this user may see: those named after `after`.
    pub async fn list_channels_page(
        &self,
        after: Option<Name>,
        limit: Option<u32>,
    ) -> Result<ChannelPage, LinkError> {
        match self
            .request(ClientFrame::ListChannels {
                id: 0,
                after,
                limit,
            })
            .await?
        {
            ServerFrame::Channels { channels, more, .. } => Ok(ChannelPage { channels, more }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// One page of history, oldest first (see `ClientFrame::History`).
    pub async fn history(
        &self,
        channel: &Name,
        after: Option<u64>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage, LinkError> {
        let frame = ClientFrame::History {
            id: 0,
            channel: channel.clone(),
            after,
            before,
            limit,
            thread: None,
        };
        self.page(frame).await
    }

    /// A page of a thread: message `root` of the channel and the replies to it, oldest first,
    /// those before `before` (or the newest).
    pub async fn thread(
        &self,
        channel: &Name,
        root: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage, LinkError> {
        let frame = ClientFrame::History {
            id: 0,
            channel: channel.clone(),
            after: None,
            before,
            limit,
            thread: Some(root),
        };
        self.page(frame).await
    }

    async fn page(&self, frame: ClientFrame) -> Result<HistoryPage, LinkError> {
        match self.request(frame).await? {
            ServerFrame::History { messages, more, .. } => Ok(HistoryPage { messages, more }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// A page of search hits, newest first, and the `before` of the page after it, if any.
    pub async fn search(
        &self,
        request: SearchRequest,
    ) -> Result<(Vec<SearchHit>, Option<String>), LinkError> {
        match self.request(request.frame()).await? {
            ServerFrame::SearchResults { hits, next, .. } => Ok((hits, next)),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn who(&self, channel: Option<&Name>) -> Result<WhoReport, LinkError> {
        let frame = ClientFrame::Who {
            id: 0,
            channel: channel.cloned(),
        };
        match self.request(frame).await? {
            ServerFrame::Who {
                sessions,
                members,
                truncated,
                ..
            } => Ok(WhoReport {
                sessions,
                members,
                truncated,
            }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn mark_read(&self, channel: &Name, seq: u64) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::MarkRead {
            id: 0,
            channel: channel.clone(),
            seq,
        })
        .await
    }

    /// Registers this machine's human key (see `ClientFrame::SetHumanKey`).
    pub async fn set_human_key(
        &self,
        public_key: [u8; 32],
        signature: [u8; 64],
    ) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::SetHumanKey {
            id: 0,
            public_key: public_key.to_vec(),
            signature: signature.to_vec(),
        })
        .await
    }

    /// A one-time code with which a new machine enrolls its own key as `machine`.
    pub async fn invite_machine(&self, machine: &Name) -> Result<MachineInvite, LinkError> {
        let frame = ClientFrame::InviteMachine {
            id: 0,
            machine: machine.clone(),
        };
        match self.request(frame).await? {
            ServerFrame::MachineInvite { code, expires, .. } => Ok(MachineInvite { code, expires }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn list_machines(&self) -> Result<Vec<MachineInfo>, LinkError> {
        match self.request(ClientFrame::ListMachines { id: 0 }).await? {
            ServerFrame::Machines { machines, .. } => Ok(machines),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn remove_machine(&self, machine: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::RemoveMachine {
            id: 0,
            machine: machine.clone(),
        })
        .await
    }
}
