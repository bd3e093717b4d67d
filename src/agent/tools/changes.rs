//! The `react` and `edit` tools: changes to a message, under the same autonomy as a post.

use crate::net::protocol::{Change, check_reaction};

use super::super::Agent;
use super::super::args::{EditArgs, ReactArgs};
use super::{Outcome, Tool, ToolError, check_size, exists};

/// Posts `change` with `text` where `channel` points, once the agent may speak there.
async fn post(
    agent: &Agent,
    channel: &crate::agent::servers::ChannelRef,
    change: Change,
    text: &str,
    done: &'static str,
) -> Result<Outcome, ToolError> {
    let place = agent.resolve(channel)?;
    let label = agent.label(&place);
    exists(agent, &place).await?;
    agent.may_reply(agent.level(&place.channel), &format!("#{label}"))?;
    let target = change.target();
    let receipt = agent
        .conn(place.server)
        .link
        .change(&place.channel, change, text)
        .await?;
    Ok(Outcome::Changed {
        channel: label,
        target,
        seq: receipt.seq,
        done,
    })
}

impl Tool for ReactArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        check_reaction(&self.reaction).map_err(|e| e.message)?;
        let change = Change::React {
            target: self.seq,
            removed: self.remove,
        };
        let done = if self.remove {
            "Took your reaction back from"
        } else {
            "Reacted to"
        };
        post(agent, &self.channel, change, &self.reaction, done).await
    }
}

impl Tool for EditArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        check_size(&self.text)?;
        let change = Change::Edit { target: self.seq };
        post(agent, &self.channel, change, &self.text, "Edited").await
    }
}
