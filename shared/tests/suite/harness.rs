//! An in-process network of phones around one [`Hub`], driven frame by frame.
//!
//! Every connection has two FIFO queues (phone → hub and hub → phone). Tests either settle the
//! network in a fixed order ([`Net::settle`]) or let a seeded random scheduler pick which queue
//! moves next, with optional disconnects ([`Net::settle_random`]). Nothing here sleeps or reads a
//! clock: the same seed always gives the same run.

use std::collections::VecDeque;

use saksi_shared::automerge::ChangeHash;
use saksi_shared::sync::{Event, Repo};
use saksi_shared::{DocumentId, Editor, Record};
use saksi_testkit::{ConnId, Hub};

/// Steps after which a run that has not gone quiet counts as a livelock.
const MAX_STEPS: usize = 20_000;

pub use saksi_testkit::editor;

pub use saksi_testkit::Rng;

/// One device: a [`Repo`] and its (possibly closed) connection to the hub.
#[derive(Debug)]
pub struct Phone {
    pub editor: Editor,
    pub repo: Repo,
    conn: Option<ConnId>,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
    /// Every event the repo reported, oldest first.
    pub events: Vec<Event>,
}

impl Phone {
    pub fn record(&self, id: &DocumentId) -> &Record {
        self.repo
            .record(id)
            .unwrap_or_else(|| panic!("{} has no document {id}", self.editor.who.device))
    }

    /// Documents the hub refused changes to, as reported to this phone.
    pub fn refusals(&self) -> Vec<(DocumentId, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChangesRefused { document, message } => Some((*document, message.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn unavailable(&self) -> Vec<DocumentId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DocumentUnavailable(id) => Some(*id),
                _ => None,
            })
            .collect()
    }
}

/// A hub and the phones around it.
#[derive(Debug)]
pub struct Net {
    pub hub: Hub,
    pub phones: Vec<Phone>,
    /// Every frame the hub sent, per phone, in order (for byte-level assertions).
    pub hub_frames: Vec<Vec<Vec<u8>>>,
}

impl Net {
    pub fn new(hub: Hub) -> Self {
        Net {
            hub,
            phones: Vec::new(),
            hub_frames: Vec::new(),
        }
    }

    /// Adds an offline phone. Its peer id is derived from the device name.
    pub fn add_phone(&mut self, editor: Editor, actor: [u8; 16]) -> usize {
        let repo = Repo::new(format!("{}-peer", editor.who.device).into(), actor);
        self.phones.push(Phone {
            editor,
            repo,
            conn: None,
            up: VecDeque::new(),
            down: VecDeque::new(),
            events: Vec::new(),
        });
        self.hub_frames.push(Vec::new());
        self.phones.len() - 1
    }

    pub fn phone(&self, i: usize) -> &Phone {
        &self.phones[i]
    }

    pub fn phone_mut(&mut self, i: usize) -> &mut Phone {
        &mut self.phones[i]
    }

    pub fn is_online(&self, i: usize) -> bool {
        self.phones[i].conn.is_some()
    }

    /// Opens a connection: the phone's `join` is queued for the hub.
    pub fn connect(&mut self, i: usize) {
        assert!(!self.is_online(i), "phone {i} is already online");
        let p = &mut self.phones[i];
        let conn = self.hub.connect(&p.editor);
        let join = p.repo.connect();
        p.conn = Some(conn);
        p.up.push_back(join);
    }

    /// Drops the connection; frames in flight are lost, as on a real network.
    pub fn disconnect(&mut self, i: usize) {
        let p = &mut self.phones[i];
        if let Some(conn) = p.conn.take() {
            self.hub.disconnect(conn);
            p.repo.disconnected();
            p.up.clear();
            p.down.clear();
        }
    }

    pub fn disconnect_all(&mut self) {
        for i in 0..self.phones.len() {
            self.disconnect(i);
        }
    }

    fn collect_from_hub(&mut self) {
        for (i, p) in self.phones.iter_mut().enumerate() {
            if let Some(conn) = p.conn {
                let frames = self.hub.take_outgoing(conn);
                self.hub_frames[i].extend(frames.iter().cloned());
                p.down.extend(frames);
            }
        }
    }

    /// Moves what the phone wants to say into its outgoing queue. Returns whether it said anything.
    pub fn flush_phone(&mut self, i: usize) -> bool {
        let p = &mut self.phones[i];
        if p.conn.is_none() {
            return false;
        }
        let frames = p.repo.take_outgoing();
        let any = !frames.is_empty();
        p.up.extend(frames);
        any
    }

    /// Queues a hand-made frame on phone `i`'s connection, as a modified client would send it.
    pub fn inject_up(&mut self, i: usize, frame: Vec<u8>) {
        assert!(self.is_online(i), "phone {i} is offline");
        self.phones[i].up.push_back(frame);
    }

    /// Delivers the oldest frame from phone `i` to the hub.
    pub fn deliver_up(&mut self, i: usize) -> bool {
        let p = &mut self.phones[i];
        let (Some(conn), Some(frame)) = (p.conn, p.up.pop_front()) else {
            return false;
        };
        self.hub.deliver(conn, &frame);
        self.collect_from_hub();
        true
    }

    /// Delivers the oldest frame from the hub to phone `i`.
    pub fn deliver_down(&mut self, i: usize) -> bool {
        let p = &mut self.phones[i];
        let Some(frame) = p.down.pop_front() else {
            return false;
        };
        let events = p.repo.receive(&frame).unwrap_or_else(|e| {
            panic!("{} could not handle a hub frame: {e}", p.editor.who.device)
        });
        p.events.extend(events);
        true
    }

    fn queues_empty(&self) -> bool {
        self.phones
            .iter()
            .all(|p| p.up.is_empty() && p.down.is_empty())
    }

    /// Runs every online phone and the hub, in a fixed order, until nobody has anything to say.
    pub fn settle(&mut self) {
        // What the hub said on its own (a record withdrawn or hidden) goes out too.
        self.collect_from_hub();
        for _ in 0..MAX_STEPS {
            let mut progress = false;
            for i in 0..self.phones.len() {
                progress |= self.flush_phone(i);
                while self.deliver_up(i) {
                    progress = true;
                }
            }
            for i in 0..self.phones.len() {
                while self.deliver_down(i) {
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
        panic!("the network did not settle within {MAX_STEPS} rounds");
    }

    /// Connects `i` and settles the network.
    pub fn sync(&mut self, i: usize) {
        if !self.is_online(i) {
            self.connect(i);
        }
        self.settle();
    }

    /// Runs at most `budget` random steps among the phones that are online: a frame moves on
    /// one queue (per-connection FIFO), or a phone produces its next frames. With
    /// `disconnects > 0`, that many times a random online phone drops its connection mid-way
    /// and comes back later (a phone still away when the budget runs out stays offline).
    /// Returns true if the network went quiet, everyone back, within the budget.
    pub fn run_random(&mut self, rng: &mut Rng, budget: usize, mut disconnects: usize) -> bool {
        let mut away: Vec<usize> = Vec::new();
        for _ in 0..budget {
            if disconnects > 0 && rng.one_in(40) {
                let online: Vec<usize> = (0..self.phones.len())
                    .filter(|&i| self.is_online(i))
                    .collect();
                if !online.is_empty() {
                    let i = online[rng.below(online.len())];
                    self.disconnect(i);
                    away.push(i);
                    disconnects -= 1;
                }
            }
            if !away.is_empty() && rng.one_in(8) {
                let i = away.swap_remove(rng.below(away.len()));
                self.connect(i);
            }
            #[derive(Clone, Copy)]
            enum Step {
                Up(usize),
                Down(usize),
                Flush(usize),
            }
            let mut steps = Vec::new();
            for (i, p) in self.phones.iter().enumerate() {
                if p.conn.is_none() {
                    continue;
                }
                if !p.up.is_empty() {
                    steps.push(Step::Up(i));
                }
                if !p.down.is_empty() {
                    steps.push(Step::Down(i));
                }
                steps.push(Step::Flush(i));
            }
            if self.queues_empty() {
                // Quiet unless someone still has something to say.
                let mut said = false;
                for i in 0..self.phones.len() {
                    said |= self.flush_phone(i);
                }
                if !said {
                    if away.is_empty() {
                        return true;
                    }
                    let i = away.pop().expect("not empty");
                    self.connect(i);
                }
                continue;
            }
            match steps[rng.below(steps.len())] {
                Step::Up(i) => {
                    self.deliver_up(i);
                }
                Step::Down(i) => {
                    self.deliver_down(i);
                }
                Step::Flush(i) => {
                    self.flush_phone(i);
                }
            }
        }
        false
    }

    /// Connects every phone and runs random steps (with up to `disconnects` drops) until the
    /// network is quiet.
    pub fn settle_random(&mut self, rng: &mut Rng, disconnects: usize) {
        for i in 0..self.phones.len() {
            if !self.is_online(i) {
                self.connect(i);
            }
        }
        if self.run_random(rng, MAX_STEPS, disconnects) {
            return;
        }
        panic!("the network did not go quiet within {MAX_STEPS} random steps");
    }
}

/// The single head of a document right after a local commit.
pub fn only_head(record: &Record) -> ChangeHash {
    let heads = record.heads();
    assert_eq!(heads.len(), 1, "a local commit leaves exactly one head");
    heads[0]
}

/// Sorted heads, for comparing replicas.
pub fn sorted_heads(record: &Record) -> Vec<ChangeHash> {
    let mut heads = record.heads();
    heads.sort();
    heads
}
