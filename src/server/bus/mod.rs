//! The bus between instances. A server of one needs none (`Bus::Local`). Several instances on
//! one PostgreSQL share a core NATS server (`serve --bus nats://...`, `Bus::Cluster`):
//!
//! - Each instance forwards what its hub stored and what happened to its sessions (presence,
//!   acts, revocations) on the subject of the room, or of the whole server; others subscribe
//!   to a room's subject only while they have subscribers in it.
//! - NATS may drop anything. Messages carry their seq: every hub delivers them in order, once,
//!   and fills gaps from the database (`gaps.rs`), which a periodic check of the channels'
//!   newest seqs also finds (a publisher that died between commit and publish, NATS away).
//! - Presence is asked, not copied: `who`, whispers, relays, user counts and path claims ask
//!   every live instance (each beats once a second) and take the answers that come in time,
//!   so the sessions of an instance that died vanish with its heartbeat; the rooms here hear
//!   them go offline (`presence.rs`). Path claims are also kept in the database with a
//!   generation (`Store::claim_path`), so a session taken over behind a partition cannot post.

pub mod gaps;
pub mod nats;
mod presence;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use color_eyre::eyre::Result;
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::nats::{Incoming, Nats};
use self::presence::RemotePresence;
use self::wire::{Answer, Question, Wire};
use super::hub::{Forward, Hub, Outgoing, RoomEffect};
use super::store::{Backend, ChannelId, Store, UserId};
use crate::net::names::SessionPath;
use crate::net::protocol::{Audience, OnConflict, SessionInfo};

/// How often an instance says it is alive, checks its rooms against the database and
/// refreshes its subscriptions.
const BEAT: Duration = Duration::from_secs(1);

/// An instance not heard from for this long is taken for dead.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a question waits for the other instances' answers.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// Questions that may wait for answers at once; past it a question is answered by this
/// instance alone.
const MAX_OPEN_QUESTIONS: usize = 1024;

/// How instances reach each other.
#[derive(Clone, Default)]
pub enum Bus {
    /// A server of one.
    #[default]
    Local,
    Cluster(Arc<Cluster>),
}

impl Bus {
    /// Sessions of the other instances, or those receiving `channel` there.
    pub async fn who(&self, channel: Option<ChannelId>) -> Vec<SessionInfo> {
        let Self::Cluster(cluster) = self else {
            return Vec::new();
        };
        let mut sessions = Vec::new();
        for answer in cluster.ask(Question::Who { channel }).await {
            if let Answer::Sessions(theirs) = answer {
                sessions.extend(theirs);
            }
        }
        sessions
    }

    /// Delivers a whisper to `to` on another instance; whether one had it.
    pub async fn whisper(&self, to: &SessionPath, frame: &Bytes) -> bool {
        let Self::Cluster(cluster) = self else {
            return false;
        };
        let question = Question::Whisper {
            to: to.clone(),
            frame: ByteBuf::from(frame.to_vec()),
        };
        delivered(cluster.ask(question).await) > 0
    }

    /// Delivers a relay to `user`'s sessions on the other instances (see `Hub::relay`); how
    /// many got it.
    pub async fn relay(
        &self,
        user: UserId,
        sender: &SessionPath,
        to: Option<&SessionPath>,
        audience: Audience,
        frame: &Bytes,
    ) -> usize {
        let Self::Cluster(cluster) = self else {
            return 0;
        };
        let question = Question::Relay {
            user,
            sender: sender.clone(),
            to: to.cloned(),
            audience,
            frame: ByteBuf::from(frame.to_vec()),
        };
        delivered(cluster.ask(question).await)
    }

    /// How many sessions of each of `users` the other instances hold.
    pub async fn online_counts(&self, users: &[UserId]) -> Vec<(UserId, u32)> {
        let Self::Cluster(cluster) = self else {
            return Vec::new();
        };
        let question = Question::Online {
            users: users.to_vec(),
        };
        let mut counts = Vec::new();
        for answer in cluster.ask(question).await {
            if let Answer::Counts(theirs) = answer {
                counts.extend(theirs);
            }
        }
        counts
    }

    /// The paths of `base`'s user and machine live on the other instances, once those that
    /// this claim takes over have been closed there.
    pub async fn claim(
        &self,
        base: &SessionPath,
        instance: Option<&str>,
        policy: OnConflict,
    ) -> HashSet<SessionPath> {
        let Self::Cluster(cluster) = self else {
            return HashSet::new();
        };
        let question = Question::Claim {
            base: base.clone(),
            instance: instance.map(str::to_owned),
            policy,
        };
        let mut paths = HashSet::new();
        for answer in cluster.ask(question).await {
            if let Answer::Paths(theirs) = answer {
                paths.extend(theirs);
            }
        }
        paths
    }
}

fn delivered(answers: Vec<Answer>) -> usize {
    answers
        .into_iter()
        .map(|a| match a {
            Answer::Delivered(n) => n as usize,
            _ => 0,
        })
        .sum()
}

/// This instance's part in a cluster.
pub struct Cluster {
    /// Random per process: tells this instance's beats and questions from the others'.
    instance: String,
    /// Subjects start with this (the server id), so clusters sharing a NATS server never
    /// hear each other.
    prefix: String,
    nats: Nats,
    hub: Arc<Hub>,
    /// When each other instance was last heard from.
    peers: Mutex<HashMap<String, Instant>>,
    /// Their sessions in rooms, announced offline here when they fall silent.
    remote: Mutex<RemotePresence>,
    questions: Mutex<HashMap<u64, mpsc::Sender<Answer>>>,
    next_question: AtomicU64,
}

impl Cluster {
    /// Connects to the NATS server at `url` and starts forwarding the hub's events, applying
    /// the other instances', beating and checking, until `shutdown`.
    pub async fn start(
        url: &str,
        server_id: &str,
        hub: Arc<Hub>,
        store: Backend,
        shutdown: CancellationToken,
    ) -> Result<Bus> {
        let (nats, incoming) = Nats::connect(url, shutdown.clone()).await?;
        let mut bytes = [0u8; 8];
        crate::net::identity::random_bytes(&mut bytes)?;
        let cluster = Arc::new(Self {
            instance: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            prefix: format!("conclave.{server_id}"),
            nats,
            hub: hub.clone(),
            peers: Mutex::default(),
            remote: Mutex::default(),
            questions: Mutex::default(),
            next_question: AtomicU64::new(0),
        });
        let (forward, outgoing) = Forward::channel();
        hub.forward_to(forward);
        cluster.follow_rooms();
        tokio::spawn(cluster.clone().forward(outgoing, shutdown.clone()));
        tokio::spawn(cluster.clone().listen(incoming, store.clone()));
        tokio::spawn(cluster.clone().beat(store, shutdown));
        Ok(Bus::Cluster(cluster))
    }

    fn room_subject(&self, channel: ChannelId) -> String {
        format!("{}.room.{channel}", self.prefix)
    }

    fn all_subject(&self) -> String {
        format!("{}.all", self.prefix)
    }

    fn reply_subject(&self, instance: &str) -> String {
        format!("{}.reply.{instance}", self.prefix)
    }

    fn publish(&self, subject: String, wire: &Wire) {
        if let Some(bytes) = wire.encode() {
            self.nats.publish(subject, bytes);
        }
    }

    /// Subscribes to the server's subjects and to the rooms with subscribers here, and to
    /// nothing else.
    fn follow_rooms(&self) {
        let mut subjects: HashSet<String> = self
            .hub
            .subscribed_rooms()
            .into_iter()
            .map(|id| self.room_subject(id))
            .collect();
        subjects.insert(self.all_subject());
        subjects.insert(self.reply_subject(&self.instance));
        self.nats.follow(subjects);
    }

    /// Publishes what the hub forwards.
    async fn forward(
        self: Arc<Self>,
        mut outgoing: mpsc::Receiver<Outgoing>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                event = outgoing.recv() => event,
                () = shutdown.cancelled() => return,
            };
            let Some(event) = event else { return };
            for (room, wire) in Wire::from_outgoing(event, &self.instance) {
                let subject = match room {
                    Some(id) => self.room_subject(id),
                    None => self.all_subject(),
                };
                self.publish(subject, &wire);
            }
        }
    }

    /// Applies what the other instances say.
    async fn listen(self: Arc<Self>, mut incoming: mpsc::Receiver<Incoming>, store: Backend) {
        while let Some(event) = incoming.recv().await {
            match event {
                // Whatever was published while away is missing: compare with the database.
                Incoming::Connected => {
                    // Nobody could be heard while the bus was away: everyone gets a fresh
                    // chance to beat before being judged silent.
                    let now = Instant::now();
                    self.lock_peers()
                        .values_mut()
                        .for_each(|heard| *heard = now);
                    self.check_rooms(&store).await;
                }
                Incoming::Message { payload, .. } => {
                    if let Some(wire) = Wire::decode(&payload) {
                        self.receive(wire);
                    }
                }
            }
        }
    }

    fn receive(&self, wire: Wire) {
        match wire {
            Wire::Messages { channel, frames } => {
                let frames = frames
                    .into_iter()
                    .map(|(seq, bytes)| (seq, Bytes::from(bytes.into_vec())))
                    .collect();
                self.hub.receive_messages(channel, frames);
            }
            Wire::Room {
                channel,
                frame,
                effect,
            } => {
                let frame = Bytes::from(frame.into_vec());
                self.hub.receive_room_event(channel, &frame, &effect);
            }
            Wire::Presence {
                from,
                channel,
                event,
                frame,
            } => {
                self.lock_remote().heard(&from, channel, &event);
                let frame = Bytes::from(frame.into_vec());
                self.hub
                    .receive_room_event(channel, &frame, &RoomEffect::Nothing);
            }
            Wire::User(effect) => self.hub.receive_user_effect(&effect),
            Wire::Beat { instance } => self.heard_from(instance),
            Wire::Ask { from, id, question } => {
                let answer = self.answer(question);
                let subject = self.reply_subject(&from);
                self.publish(subject, &Wire::Answer { id, answer });
            }
            Wire::Answer { id, answer } => {
                let waiting = self.lock_questions().get(&id).cloned();
                if let Some(tx) = waiting {
                    let _ = tx.try_send(answer);
                }
            }
        }
    }

    /// Answers another instance's question from the sessions here.
    fn answer(&self, question: Question) -> Answer {
        match question {
            Question::Who { channel } => Answer::Sessions(self.hub.who(channel)),
            Question::Whisper { to, frame } => {
                let frame = Bytes::from(frame.into_vec());
                Answer::Delivered(u32::from(self.hub.whisper(&to, &frame)))
            }
            Question::Relay {
                user,
                sender,
                to,
                audience,
                frame,
            } => {
                let frame = Bytes::from(frame.into_vec());
                let n = self.hub.relay(user, &sender, to.as_ref(), audience, &frame);
                Answer::Delivered(u32::try_from(n).unwrap_or(u32::MAX))
            }
            Question::Online { users } => {
                Answer::Counts(self.hub.online_counts(&users).into_iter().collect())
            }
            Question::Claim {
                base,
                instance,
                policy,
            } => Answer::Paths(
                self.hub
                    .yield_path(&base, instance.as_deref(), policy)
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn heard_from(&self, instance: String) {
        let new = self.lock_peers().insert(instance, Instant::now()).is_none();
        if new {
            // So a newcomer knows of this instance before its next beat.
            self.publish(self.all_subject(), &self.beat_message());
        }
    }

    fn beat_message(&self) -> Wire {
        Wire::Beat {
            instance: self.instance.clone(),
        }
    }

    /// Asks every live instance and gathers the answers that come in time.
    async fn ask(&self, question: Question) -> Vec<Answer> {
        let expected = self.live_peers();
        if expected == 0 {
            return Vec::new();
        }
        let id = self.next_question.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(expected);
        {
            let mut open = self.lock_questions();
            if open.len() >= MAX_OPEN_QUESTIONS {
                tracing::warn!("too many questions to other instances: answering alone");
                return Vec::new();
            }
            open.insert(id, tx);
        }
        let ask = Wire::Ask {
            from: self.instance.clone(),
            id,
            question,
        };
        self.publish(self.all_subject(), &ask);
        let mut answers = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + ASK_TIMEOUT;
        while answers.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(answer)) => answers.push(answer),
                _ => break,
            }
        }
        self.lock_questions().remove(&id);
        answers
    }

    fn live_peers(&self) -> usize {
        let peers = self.lock_peers();
        peers
            .values()
            .filter(|heard| heard.elapsed() < PEER_TIMEOUT)
            .count()
    }

    /// Takes the instances not heard from in time for dead, and tells the rooms here their
    /// sessions went offline.
    fn reap_silent_peers(&self) {
        if !self.nats.is_connected() {
            // Silence is ours, not theirs: they are judged once the bus is back.
            return;
        }
        let silent: Vec<String> = {
            let mut peers = self.lock_peers();
            let silent = peers
                .iter()
                .filter(|(_, heard)| heard.elapsed() >= PEER_TIMEOUT)
                .map(|(id, _)| id.clone())
                .collect();
            peers.retain(|_, heard| heard.elapsed() < PEER_TIMEOUT);
            silent
        };
        for instance in silent {
            tracing::warn!(%instance, "an instance fell silent: its sessions are gone");
            let offline = self.lock_remote().forget(&instance);
            for (channel, frame) in offline {
                self.hub
                    .receive_room_event(channel, &frame, &RoomEffect::Nothing);
            }
        }
    }

    /// Beats, follows the rooms with subscribers here, and checks them against the database.
    async fn beat(self: Arc<Self>, store: Backend, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(BEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.publish(self.all_subject(), &self.beat_message());
                    self.reap_silent_peers();
                    self.follow_rooms();
                    self.check_rooms(&store).await;
                }
                () = self.hub.interest_grew() => self.follow_rooms(),
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Tells the hub how far the database has each room with subscribers here, so what the
    /// bus lost is filled.
    async fn check_rooms(&self, store: &Backend) {
        let rooms = self.hub.subscribed_rooms();
        if rooms.is_empty() {
            return;
        }
        match store.last_seqs(&rooms).await {
            Ok(stored) => {
                for (channel, seq) in stored {
                    self.hub.note_stored(channel, seq);
                }
            }
            Err(e) => tracing::debug!(%e, "cannot check the rooms against the database"),
        }
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_remote(&self) -> std::sync::MutexGuard<'_, RemotePresence> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_questions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Answer>>> {
        self.questions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
