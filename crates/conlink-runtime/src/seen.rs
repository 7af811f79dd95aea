//! The engine's containers as its event stream shows them, so that the
//! convergence check behind `All links connected` need not list every
//! container of the engine after every setup.
//!
//! During `docker compose up --scale node=200` compose creates the 200
//! containers, then starts them; each start is a setup, and each setup
//! ended with a convergence check that listed the engine's containers
//! (docker walks and locks every container for a listing, while it starts
//! the next ones). With the create, start, die, destroy and rename events
//! folded into this record, a check that only has to learn "some wanted
//! container is not running yet" reads it here instead.
//!
//! The record is a hint, never the last word: `All links connected` is
//! only announced after a fresh listing agrees (the core asks for one),
//! and a "still waiting" read from the record is looked at again with a
//! fresh listing a moment later. An event the engine does not send (an
//! engine without `create` events, a `remove` named otherwise) therefore
//! delays nothing for long and announces nothing early.

use crate::Known;
use std::collections::HashMap;

/// One container as last seen.
#[derive(Debug, Clone)]
struct Rec {
    /// Name and compose identity; None until a listing names it (a
    /// container first heard of by a `create` event without attributes,
    /// or renamed).
    known: Option<Known>,
    /// Created, starting, restarting or running: a container `All links
    /// connected` waits for (if the config wants it).
    alive: bool,
    /// The number of the last event that set `alive`; 0 when it came from
    /// a listing. An event's word on `alive` beats a listing's: the engine
    /// may list a container that just died as running (docker 20.10 sends
    /// `die` before its list shows it), and a listing that is newer than
    /// the event means a newer event is on its way.
    seq: u64,
}

/// What the event stream and the listings have shown of one engine.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// True while the event stream runs and a listing since it opened has
    /// been merged: only then is the record complete.
    live: bool,
    /// Events folded in so far.
    seq: u64,
    recs: HashMap<String, Rec>,
}

/// A container as a listing shows it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub id: String,
    pub known: Known,
    /// Created, restarting or running.
    pub alive: bool,
}

impl Seen {
    /// The sequence number to pass to [`Self::merge`] for a listing that
    /// starts now.
    pub(crate) fn mark(&self) -> u64 {
        self.seq
    }

    /// Whether the record is complete: true once a listing is merged
    /// with the event stream open (or replaying from before it), false
    /// when the stream broke (events may be missed until the next one).
    pub(crate) fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Folds in one container event (`action` as the engine names it);
    /// `named`: the name and compose identity a `create` event carried
    /// (docker sends the name and every label as the event's attributes),
    /// so that a container created beside the lab (another project's)
    /// does not make the next check list the engine to learn who it is.
    pub(crate) fn event(&mut self, action: &str, id: &str, named: Option<Known>) {
        self.seq += 1;
        let seq = self.seq;
        let alive = match action {
            "create" | "start" => true,
            "die" => false,
            "destroy" | "remove" => {
                self.recs.remove(id);
                return;
            }
            "rename" => {
                if let Some(r) = self.recs.get_mut(id) {
                    r.known = None;
                }
                return;
            }
            _ => return,
        };
        let r = self.recs.entry(id.to_string()).or_insert(Rec {
            known: None,
            alive,
            seq,
        });
        r.alive = alive;
        r.seq = seq;
        if named.is_some() {
            r.known = named;
        }
    }

    /// Merges a listing started when [`Self::mark`] said `since`: it gives
    /// which containers exist and their names; whether each is alive comes
    /// from the listing unless an event said so. A container the listing
    /// lacks is gone, unless an event about it came while the listing ran.
    pub(crate) fn merge(&mut self, since: u64, list: Vec<Listed>) {
        let mut recs = HashMap::with_capacity(list.len());
        for l in list {
            let rec = match self.recs.remove(&l.id) {
                Some(old) if old.seq > 0 => Rec {
                    known: Some(l.known),
                    ..old
                },
                _ => Rec {
                    known: Some(l.known),
                    alive: l.alive,
                    seq: 0,
                },
            };
            recs.insert(l.id, rec);
        }
        for (id, r) in self.recs.drain() {
            if r.seq > since {
                recs.insert(id, r);
            }
        }
        self.recs = recs;
    }

    /// The containers alive, from the record alone; None when it cannot
    /// tell (the stream is not live, or a container has no name yet).
    pub(crate) fn alive(&self) -> Option<Vec<Known>> {
        if !self.live {
            return None;
        }
        let mut out = Vec::new();
        for r in self.recs.values().filter(|r| r.alive) {
            out.push(r.known.clone()?);
        }
        Some(out)
    }

    /// The containers alive by this record, after a merge (the answer to a
    /// fresh listing: the listing's containers, with the events' word on
    /// which are alive). Unnamed ones (an event during the listing) are
    /// left out: their names come with the next listing.
    pub(crate) fn alive_named(&self) -> Vec<Known> {
        self.recs
            .values()
            .filter(|r| r.alive)
            .filter_map(|r| r.known.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Known {
        Known {
            name: name.into(),
            service: Some("node".into()),
            project: Some("lab".into()),
        }
    }

    fn l(id: &str, alive: bool) -> Listed {
        Listed {
            id: id.into(),
            known: k(id),
            alive,
        }
    }

    fn names(v: Option<Vec<Known>>) -> Option<Vec<String>> {
        v.map(|v| {
            let mut n: Vec<String> = v.into_iter().map(|k| k.name).collect();
            n.sort();
            n
        })
    }

    #[test]
    fn nothing_is_told_before_a_listing_is_merged_with_the_stream_live() {
        let mut s = Seen::default();
        assert!(s.alive().is_none());
        s.event("create", "a", None);
        assert!(s.alive().is_none());
        let m = s.mark();
        s.merge(m, vec![l("a", true)]);
        assert!(s.alive().is_none(), "stream not live");
        s.set_live(true);
        assert_eq!(names(s.alive()), Some(vec!["a".into()]));
    }

    #[test]
    fn a_created_container_needs_a_listing_for_its_name_then_events_keep_it() {
        let mut s = Seen::default();
        let m = s.mark();
        s.merge(m, vec![l("a", true), l("old", false)]);
        s.set_live(true);
        // compose creates b and c: unnamed until listed.
        s.event("create", "b", None);
        s.event("create", "c", None);
        assert!(s.alive().is_none());
        let m = s.mark();
        s.merge(m, vec![l("a", true), l("b", true), l("c", true)]);
        assert_eq!(
            names(s.alive()),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        // Starts and deaths need no listing.
        s.event("start", "b", None);
        s.event("die", "a", None);
        s.event("start", "c", None);
        assert_eq!(names(s.alive()), Some(vec!["b".into(), "c".into()]));
        s.event("destroy", "b", None);
        s.event("remove", "c", None);
        assert_eq!(names(s.alive()), Some(vec![]));
        // A rename takes the name away until the next listing.
        s.event("start", "a", None);
        s.event("rename", "a", None);
        assert!(s.alive().is_none());
    }

    #[test]
    fn a_create_that_names_its_container_needs_no_listing() {
        let mut s = Seen::default();
        let m = s.mark();
        s.merge(m, vec![l("a", true)]);
        s.set_live(true);
        s.event("create", "x", Some(k("x")));
        assert_eq!(names(s.alive()), Some(vec!["a".into(), "x".into()]));
        // A later event without attributes keeps the name.
        s.event("start", "x", None);
        assert_eq!(names(s.alive()), Some(vec!["a".into(), "x".into()]));
    }

    #[test]
    fn an_event_beats_a_listing_and_an_event_during_a_listing_survives_it() {
        let mut s = Seen::default();
        let m = s.mark();
        s.merge(m, vec![l("a", true), l("b", true)]);
        s.set_live(true);
        // a dies; the engine still lists it running (docker 20.10).
        s.event("die", "a", None);
        let m = s.mark();
        // d is created while the listing runs: the listing lacks it.
        s.event("create", "d", None);
        s.merge(m, vec![l("a", true), l("b", true)]);
        assert_eq!(names(Some(s.alive_named())), Some(vec!["b".into()]));
        assert!(s.alive().is_none(), "d has no name yet");
        // b goes without a destroy event reaching us: the next listing
        // lacks it, and it is gone.
        let m = s.mark();
        s.merge(m, vec![l("a", false), l("d", true)]);
        assert_eq!(names(s.alive()), Some(vec!["d".into()]));
    }

    #[test]
    fn a_broken_stream_makes_the_record_unsure_until_the_next_listing() {
        let mut s = Seen::default();
        let m = s.mark();
        s.merge(m, vec![l("a", true)]);
        s.set_live(true);
        s.set_live(false);
        assert!(s.alive().is_none());
        // A listing while the stream is down does not make it sure.
        let m = s.mark();
        s.merge(m, vec![]);
        assert!(s.alive().is_none());
        // The resync after the reconnection does.
        let m = s.mark();
        s.merge(m, vec![l("b", true)]);
        s.set_live(true);
        assert_eq!(names(s.alive()), Some(vec!["b".into()]));
    }
}
