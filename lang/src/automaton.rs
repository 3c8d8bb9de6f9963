//! The language's regexes as automata over bytes: the Thompson NFA that `regex::nfa` builds
//! from a parsed pattern, and the full DFA that `pattern` determinizes it into once, when the
//! program is compiled. A request then walks one table entry per byte of the value and stops
//! at the first byte where a match is certain or impossible.
//!
//! Written here rather than taken from `regex-automata` (whose dense DFA the language used
//! before): its NFA compiler, determinizer and the code they bring with them (minimization and
//! acceleration it cannot leave out, ordered maps, sorts) were 75 KB of the 517 KB module, and
//! V8 compiles every byte of a module when Envoy loads it: measured, about 2 MiB of Envoy's RSS
//! (BENCHMARKS.md, Memory). What the language needs is narrower: one pattern, an unanchored
//! "is there a match" from the start of the value, ASCII look-around. Semantics are those of
//! the former engine and of regex-lite, checked by the property tests and the `regex` fuzz
//! target on generated patterns and haystacks.
//!
//! Look-around: a DFA state is the set of NFA states reached before their epsilon closure,
//! with what the previous byte was (none, `\n`, `\r`, a word byte, another byte). The closure
//! is taken when the next byte (or the end) is known, so every assertion is decided from the
//! bytes on both sides of its position, as the former engine decided them.

use std::collections::HashMap;
use std::rc::Rc;

/// An ASCII look-around assertion (what `\b`, `^`, `$`, `\A`, `\z` and friends compile to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// `\A`, or `^` without `(?m)`.
    Start,
    /// `\z`, or `$` without `(?m)`.
    End,
    /// `(?m)^`.
    StartLF,
    /// `(?m)$`.
    EndLF,
    /// `(?mR)^`: after `\n`, or after a `\r` not followed by `\n`.
    StartCRLF,
    /// `(?mR)$`: before `\r`, or before a `\n` not preceded by `\r`.
    EndCRLF,
    /// `\b`.
    WordAscii,
    /// `\B`.
    WordAsciiNegate,
    /// `\<`, `\b{start}`.
    WordStartAscii,
    /// `\>`, `\b{end}`.
    WordEndAscii,
    /// `\b{start-half}`: no word byte before.
    WordStartHalfAscii,
    /// `\b{end-half}`: no word byte after.
    WordEndHalfAscii,
}

/// What is on one side of a position, as far as any assertion can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    /// The start (before) or the end (after) of the value.
    Edge,
    Lf,
    Cr,
    Word,
    /// A UTF-8 continuation byte (`80`–`BF`): the position before it is inside a character.
    Inside,
    Other,
}

impl Side {
    fn of(b: u8) -> Side {
        match b {
            b'\n' => Side::Lf,
            b'\r' => Side::Cr,
            b if b == b'_' || b.is_ascii_alphanumeric() => Side::Word,
            0x80..=0xBF => Side::Inside,
            _ => Side::Other,
        }
    }

    fn word(self) -> bool {
        self == Side::Word
    }
}

impl Look {
    fn holds(self, before: Side, after: Side) -> bool {
        use Side::*;
        // Values are UTF-8 and regex-lite, whose meaning the language keeps, looks only between
        // characters: `\B` holds between the two bytes of `é` by their sides, yet is no match.
        if after == Inside {
            return false;
        }
        match self {
            Look::Start => before == Edge,
            Look::End => after == Edge,
            Look::StartLF => matches!(before, Edge | Lf),
            Look::EndLF => matches!(after, Edge | Lf),
            Look::StartCRLF => matches!(before, Edge | Lf) || (before == Cr && after != Lf),
            Look::EndCRLF => matches!(after, Edge | Cr) || (after == Lf && before != Cr),
            Look::WordAscii => before.word() != after.word(),
            Look::WordAsciiNegate => before.word() == after.word(),
            Look::WordStartAscii => !before.word() && after.word(),
            Look::WordEndAscii => before.word() && !after.word(),
            Look::WordStartHalfAscii => !before.word(),
            Look::WordEndHalfAscii => !after.word(),
        }
    }

    /// Whether the assertion tells a word byte from another byte.
    fn reads_words(self) -> bool {
        !matches!(
            self,
            Look::Start | Look::End | Look::StartLF | Look::EndLF | Look::StartCRLF | Look::EndCRLF
        )
    }
}

pub type StateId = u32;

/// The target of an empty state not patched yet: it leads nowhere.
const UNSET: StateId = StateId::MAX;

/// A byte range and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub start: u8,
    pub end: u8,
    pub next: StateId,
}

#[derive(Debug, Clone)]
enum State {
    Empty(StateId),
    Range(Transition),
    /// Ranges in ascending order that do not overlap.
    Sparse(Vec<Transition>),
    Union(Vec<StateId>),
    Look(Look, StateId),
    Match,
    Fail,
}

/// The automaton would take more memory than its limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Builds an NFA state by state, counting the bytes it takes against a limit.
pub struct Builder {
    states: Vec<State>,
    bytes: usize,
    limit: usize,
}

impl Builder {
    pub fn new(limit: usize) -> Builder {
        Builder {
            states: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), TooLarge> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limit {
            return Err(TooLarge);
        }
        Ok(())
    }

    fn add(&mut self, state: State, extra: usize) -> Result<StateId, TooLarge> {
        self.charge(std::mem::size_of::<State>() + extra)?;
        let id = StateId::try_from(self.states.len()).map_err(|_| TooLarge)?;
        self.states.push(state);
        Ok(id)
    }

    /// An empty state, to be patched to its successor.
    pub fn add_empty(&mut self) -> Result<StateId, TooLarge> {
        self.add(State::Empty(UNSET), 0)
    }

    pub fn add_look(&mut self, next: StateId, look: Look) -> Result<StateId, TooLarge> {
        self.add(State::Look(look, next), 0)
    }

    pub fn add_union(&mut self, alternates: Vec<StateId>) -> Result<StateId, TooLarge> {
        let extra = alternates.len() * std::mem::size_of::<StateId>();
        self.add(State::Union(alternates), extra)
    }

    pub fn add_range(&mut self, t: Transition) -> Result<StateId, TooLarge> {
        self.add(State::Range(t), 0)
    }

    pub fn add_sparse(&mut self, ranges: Vec<Transition>) -> Result<StateId, TooLarge> {
        let extra = ranges.len() * std::mem::size_of::<Transition>();
        self.add(State::Sparse(ranges), extra)
    }

    pub fn add_match(&mut self) -> Result<StateId, TooLarge> {
        self.add(State::Match, 0)
    }

    pub fn add_fail(&mut self) -> Result<StateId, TooLarge> {
        self.add(State::Fail, 0)
    }

    /// Points an empty state at `to`, or adds `to` as one more alternate of a union.
    pub fn patch(&mut self, from: StateId, to: StateId) -> Result<(), TooLarge> {
        let grew = match self.states.get_mut(from as usize) {
            Some(State::Empty(next)) => {
                *next = to;
                false
            }
            Some(State::Union(alternates)) => {
                alternates.push(to);
                true
            }
            _ => false,
        };
        if grew {
            self.charge(std::mem::size_of::<StateId>())?;
        }
        Ok(())
    }

    /// The NFA whose search starts at `start`; `unanchored` if `start` is a loop over any byte
    /// in front of the pattern (`regex::nfa`).
    pub fn build(self, start: StateId, unanchored: bool) -> Nfa {
        let reads_words = self
            .states
            .iter()
            .any(|s| matches!(s, State::Look(l, _) if l.reads_words()));
        let reads_lines = self.states.iter().any(|s| {
            matches!(
                s,
                State::Look(
                    Look::StartLF | Look::EndLF | Look::StartCRLF | Look::EndCRLF,
                    _
                )
            )
        });
        let looks = self.states.iter().any(|s| matches!(s, State::Look(..)));
        Nfa {
            states: self.states,
            start,
            unanchored,
            looks,
            reads_words,
            reads_lines,
        }
    }
}

/// A Thompson NFA over bytes with one start state.
#[derive(Debug, Clone)]
pub struct Nfa {
    states: Vec<State>,
    start: StateId,
    unanchored: bool,
    /// Whether there is any assertion: they hold only between characters (`Side::Inside`).
    looks: bool,
    /// Whether any assertion tells word bytes apart, or `\n` and `\r`: when none does, DFA
    /// states need not remember the previous byte, and there are up to four times fewer.
    reads_words: bool,
    reads_lines: bool,
}

impl Nfa {
    /// The previous byte's side, reduced to what this NFA's assertions can tell apart.
    fn before(&self, side: Side) -> Side {
        match side {
            Side::Inside => Side::Other,
            Side::Word if !self.reads_words => Side::Other,
            Side::Lf | Side::Cr if !self.reads_lines => Side::Other,
            side => side,
        }
    }

    /// The byte classes: bytes no transition or assertion tells apart share a class. Classes
    /// are runs of consecutive bytes, numbered in ascending order.
    fn classes(&self) -> ([u8; 256], usize) {
        let mut cut = [false; 256]; // a class starts at this byte
        let mut mark = |start: u8, end: u8| {
            cut[usize::from(start)] = true;
            if let Some(after) = end.checked_add(1) {
                cut[usize::from(after)] = true;
            }
        };
        for s in &self.states {
            match s {
                State::Range(t) => mark(t.start, t.end),
                State::Sparse(ts) => ts.iter().for_each(|t| mark(t.start, t.end)),
                _ => {}
            }
        }
        if self.reads_lines {
            mark(b'\n', b'\n');
            mark(b'\r', b'\r');
        }
        if self.looks {
            mark(0x80, 0xBF);
        }
        if self.reads_words {
            mark(b'0', b'9');
            mark(b'A', b'Z');
            mark(b'_', b'_');
            mark(b'a', b'z');
        }
        let mut classes = [0u8; 256];
        let mut class = 0usize;
        for b in 0..256 {
            if b > 0 && cut[b] {
                class += 1;
            }
            // At most 256 classes: one per byte.
            classes[b] = class as u8;
        }
        (classes, class + 1)
    }
}

/// A full DFA for an unanchored "is there a match" search from the start of a value.
///
/// States are rows of `stride` entries, one per byte class; a state's id is its row's first
/// index, so a step is one load. Row 0 is the dead state (no match can follow), row 1 the
/// match state (a match was found); both lead to themselves.
#[derive(Clone)]
pub struct Dfa {
    classes: [u8; 256],
    stride: u32,
    table: Vec<StateId>,
    /// By row: whether the value ending here is a match.
    at_end: Vec<bool>,
    start: StateId,
}

const DEAD: StateId = 0;

impl Dfa {
    /// Determinizes `nfa`. The table may take `table_limit` bytes; the sets of NFA states
    /// that name DFA states while it is built, `scratch_limit` bytes. Past either, the pattern
    /// is refused rather than matched slowly.
    #[inline(never)] // V8 compiles each function alone: see lang::compile
    pub fn new(nfa: &Nfa, table_limit: usize, scratch_limit: usize) -> Result<Dfa, TooLarge> {
        let (classes, count) = nfa.classes();
        // Each class's first byte stands for it, and the side it puts a position on.
        let mut firsts = vec![0u8; count];
        for b in (0..=255u8).rev() {
            firsts[usize::from(classes[usize::from(b)])] = b;
        }
        let stride = count;
        let mut d = Determinizer {
            nfa,
            seen: vec![0; nfa.states.len()],
            stamp: 0,
            stack: Vec::new(),
            ids: HashMap::new(),
            sets: Vec::new(),
            scratch: 0,
            scratch_limit,
            in_base: vec![false; nfa.states.len()],
        };
        let mut table: Vec<StateId> = vec![DEAD; stride];
        table.extend(std::iter::repeat_n(stride as StateId, stride)); // the match state
        let mut at_end = vec![false, true];
        let charge_rows = |rows: usize| -> Result<(), TooLarge> {
            if rows.saturating_mul(stride).saturating_mul(4) > table_limit {
                return Err(TooLarge);
            }
            Ok(())
        };
        d.sets.push((Side::Other, Rc::from([]))); // dead
        d.sets.push((Side::Other, Rc::from([]))); // match
        // An unanchored search re-enters the pattern's start after every byte, so every state
        // holds the states the start stands for: they are left out of the keys (shorter keys,
        // less to hash, sort and keep) and added back when a row is built.
        let reached = d.reduce(&[nfa.start]);
        let (base, start_key) = if nfa.unanchored {
            // The walk just taken stamped every state it passed.
            for (in_base, &seen) in d.in_base.iter_mut().zip(&d.seen) {
                *in_base = seen == d.stamp;
            }
            (super::sorted(reached), Vec::new())
        } else {
            (Vec::new(), super::sorted(reached))
        };
        let start = d.id_of(Side::Edge, &start_key)?;
        // The classes by the side their bytes put a position on (uniform within a class
        // whenever an assertion could tell).
        let mut by_side: Vec<(Side, Vec<usize>)> = Vec::new();
        for (class, &first) in firsts.iter().enumerate() {
            let side = Side::of(first);
            match by_side.iter_mut().find(|(s, _)| *s == side) {
                Some((_, v)) => v.push(class),
                None => by_side.push((side, vec![class])),
            }
        }
        let mut buckets: Vec<Vec<StateId>> = vec![Vec::new(); stride];
        let mut targets: Vec<StateId> = vec![DEAD; stride];
        let mut row = 2;
        while row < d.sets.len() {
            charge_rows(row + 1)?;
            let (before, encoded) = d.sets[row].clone();
            let mut seeds = decode(&encoded);
            seeds.extend_from_slice(&base);
            at_end.push(d.closure(&seeds, before, Side::Edge).is_none());
            d.row(
                &seeds,
                before,
                &by_side,
                &classes,
                &mut buckets,
                &mut targets,
            )?;
            table.extend_from_slice(&targets);
            row += 1;
        }
        Ok(Dfa {
            classes,
            stride: stride as StateId,
            table,
            at_end,
            start: start * stride as StateId,
        })
    }

    /// Whether the regex matches somewhere in `haystack`.
    #[inline]
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        let matched = self.stride;
        let mut s = self.start;
        for &b in haystack {
            if s <= matched {
                return s == matched;
            }
            let class = StateId::from(self.classes[usize::from(b)]);
            s = match self.table.get((s + class) as usize) {
                Some(&next) => next,
                None => return false,
            };
        }
        self.ends_in_match(s)
    }

    /// Bytes this automaton keeps for the life of the program.
    pub fn memory_usage(&self) -> usize {
        self.table.len() * std::mem::size_of::<StateId>() + self.at_end.len() + self.classes.len()
    }

    // The walk over states is for the tools' examples (`Pattern::example`), not the filter.
    #[cfg(not(target_os = "wasi"))]
    pub fn start(&self) -> StateId {
        self.start
    }

    #[cfg(not(target_os = "wasi"))]
    pub fn next(&self, state: StateId, byte: u8) -> StateId {
        let class = StateId::from(self.classes[usize::from(byte)]);
        self.table
            .get((state + class) as usize)
            .copied()
            .unwrap_or(DEAD)
    }

    #[cfg(not(target_os = "wasi"))]
    pub fn is_dead(&self, state: StateId) -> bool {
        state == DEAD
    }

    /// Whether a value that ends in `state` is a match.
    pub fn ends_in_match(&self, state: StateId) -> bool {
        self.at_end
            .get((state / self.stride) as usize)
            .copied()
            .unwrap_or(false)
    }
}

/// Ascending state ids as LEB128 differences.
fn encode(set: &[StateId]) -> Rc<[u8]> {
    let mut out = Vec::with_capacity(set.len() + 4);
    let mut previous = 0;
    for &id in set {
        let mut delta = id.wrapping_sub(previous);
        previous = id;
        loop {
            let low = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(low);
                break;
            }
            out.push(low | 0x80);
        }
    }
    Rc::from(out)
}

fn decode(bytes: &[u8]) -> Vec<StateId> {
    let mut out = Vec::new();
    let (mut previous, mut delta, mut shift) = (0 as StateId, 0 as StateId, 0u32);
    for &b in bytes {
        delta |= StateId::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            previous = previous.wrapping_add(delta);
            out.push(previous);
            delta = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    out
}

struct Determinizer<'n> {
    nfa: &'n Nfa,
    /// By NFA state: the stamp of the last walk that reached it.
    seen: Vec<u32>,
    stamp: u32,
    stack: Vec<StateId>,
    ids: HashMap<(Side, Rc<[u8]>), StateId>,
    /// By DFA row: the side of the previous byte and the NFA states it stands for (`reduce`),
    /// in ascending order, each as its difference from the one before in LEB128: most are a
    /// byte, a quarter of the plain list (the determinizer's scratch limit counts these).
    sets: Vec<(Side, Rc<[u8]>)>,
    scratch: usize,
    scratch_limit: usize,
    /// By NFA state: whether the walk from an unanchored search's start passes it
    /// (`reduce_beyond_base` skips those).
    in_base: Vec<bool>,
}

impl Determinizer<'_> {
    /// The targets of one row (the state after `seeds`, reached with a byte on `before`'s
    /// side), by class. Apart from `Dfa::new` to keep each function small (see lang::compile).
    #[inline(never)]
    fn row(
        &mut self,
        seeds: &[StateId],
        before: Side,
        by_side: &[(Side, Vec<usize>)],
        classes: &[u8; 256],
        buckets: &mut [Vec<StateId>],
        targets: &mut [StateId],
    ) -> Result<(), TooLarge> {
        let stride = targets.len() as StateId;
        for (after, members) in by_side {
            let Some(states) = self.closure(seeds, before, *after) else {
                members.iter().for_each(|&c| targets[c] = stride);
                continue;
            };
            // Each byte state's targets into the buckets of the classes its ranges cover.
            for &c in members {
                buckets[c].clear();
            }
            for &s in &states {
                self.spread(s, classes, buckets);
            }
            for &c in members {
                let key = self.reduce_beyond_base(&buckets[c]);
                targets[c] = if key.is_empty() && !self.nfa.unanchored {
                    DEAD
                } else {
                    self.id_of(self.nfa.before(*after), &super::sorted(key))? * stride
                };
            }
        }
        Ok(())
    }

    fn stamp_next(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
    }

    /// Whether `s` is new in this walk (and marks it).
    fn mark(&mut self, s: StateId) -> bool {
        match self.seen.get_mut(s as usize) {
            Some(stamp) if *stamp != self.stamp => {
                *stamp = self.stamp;
                true
            }
            _ => false,
        }
    }

    /// The row of the DFA state `(before, set)`, added if new; `set` in ascending order.
    fn id_of(&mut self, before: Side, set: &[StateId]) -> Result<StateId, TooLarge> {
        let key = (before, encode(set));
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        // The set once (shared by the map and the row), the map's entry and the row's.
        self.scratch = self.scratch.saturating_add(key.1.len() + 48);
        if self.scratch > self.scratch_limit {
            return Err(TooLarge);
        }
        let id = StateId::try_from(self.sets.len()).map_err(|_| TooLarge)?;
        self.sets.push(key.clone());
        self.ids.insert(key, id);
        Ok(id)
    }

    /// What `seeds` stand for: the states they reach through empty states and unions that read
    /// a byte, assert or match. Two sets of seeds that reach the same such states lead to the
    /// same closures whatever the next byte, so they name one DFA state (fewer states: `.{200}`
    /// fits in its limit only so).
    fn reduce(&mut self, seeds: &[StateId]) -> Vec<StateId> {
        self.stamp_next();
        self.walk(seeds, false)
    }

    /// `reduce`, less the states the start stands for (`base`).
    fn reduce_beyond_base(&mut self, seeds: &[StateId]) -> Vec<StateId> {
        self.stamp_next();
        self.walk(seeds, true)
    }

    fn walk(&mut self, seeds: &[StateId], beyond_base: bool) -> Vec<StateId> {
        let mut out = Vec::new();
        self.stack.clear();
        self.stack.extend(seeds.iter().rev());
        while let Some(s) = self.stack.pop() {
            if !self.mark(s)
                || (beyond_base && self.in_base.get(s as usize).copied().unwrap_or(false))
            {
                continue;
            }
            match self.nfa.states.get(s as usize) {
                Some(State::Empty(next)) => self.stack.push(*next),
                Some(State::Union(alternates)) => self.stack.extend(alternates.iter().rev()),
                Some(State::Range(_) | State::Sparse(_) | State::Look(..) | State::Match) => {
                    out.push(s)
                }
                Some(State::Fail) | None => {}
            }
        }
        out
    }

    /// The states that read a byte, reached from `seeds` through empty states, unions and the
    /// assertions that hold between `before` and `after`; `None` if a match is reached.
    fn closure(&mut self, seeds: &[StateId], before: Side, after: Side) -> Option<Vec<StateId>> {
        self.stamp_next();
        let mut out = Vec::new();
        self.stack.clear();
        self.stack.extend(seeds.iter().rev());
        while let Some(s) = self.stack.pop() {
            if !self.mark(s) {
                continue;
            }
            match self.nfa.states.get(s as usize) {
                Some(State::Empty(next)) => self.stack.push(*next),
                Some(State::Union(alternates)) => self.stack.extend(alternates.iter().rev()),
                Some(State::Look(look, next)) => {
                    if look.holds(before, after) {
                        self.stack.push(*next);
                    }
                }
                Some(State::Range(_) | State::Sparse(_)) => out.push(s),
                Some(State::Match) => return None,
                Some(State::Fail) | None => {}
            }
        }
        Some(out)
    }

    /// Adds where NFA state `s` goes to the bucket of every class its ranges cover (classes
    /// are runs of bytes in ascending order, so a range covers consecutive classes).
    fn spread(&self, s: StateId, classes: &[u8; 256], buckets: &mut [Vec<StateId>]) {
        let mut add = |t: &Transition| {
            let (a, b) = (classes[usize::from(t.start)], classes[usize::from(t.end)]);
            for c in a..=b {
                if let Some(bucket) = buckets.get_mut(usize::from(c)) {
                    bucket.push(t.next);
                }
            }
        };
        match self.nfa.states.get(s as usize) {
            Some(State::Range(t)) => add(t),
            Some(State::Sparse(ts)) => ts.iter().for_each(add),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regex::{self, Limits};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn dfa(pattern: &str) -> Dfa {
        let limits = Limits {
            nesting: 128,
            repetition: 1000,
        };
        let node = regex::parse(pattern, limits).unwrap_or_else(|e| panic!("{pattern}: {e:?}"));
        let nfa = regex::nfa(&node, 1 << 20).unwrap_or_else(|_| panic!("{pattern}: NFA"));
        Dfa::new(&nfa, 1 << 20, 1 << 20).unwrap_or_else(|_| panic!("{pattern}: DFA"))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn assertions_are_decided_by_the_bytes_on_both_sides() {
        let cases: &[(&str, &str, bool)] = &[
            (r"\bfoo\b", "a foo b", true),
            (r"\bfoo\b", "afoo b", false),
            (r"\bfoo\b", "foo", true),
            (r"\Bfoo", "afoo", true),
            (r"\Bfoo", "a foo", false),
            (r"\<ab", "x ab", true),
            (r"\<ab", "xab", false),
            (r"ab\>", "ab.", true),
            (r"ab\>", "abc", false),
            (r"\b{start-half}a", "-a", true),
            (r"\b{start-half}a", "ba", false),
            (r"a\b{end-half}", "a", true),
            (r"a\b{end-half}", "ab", false),
            (r"\Aab", "ab", true),
            (r"\Aab", "cab", false),
            (r"ab\z", "cab", true),
            (r"ab\z", "abc", false),
            (r"^b", "a\nb", false),
            (r"(?m)^b", "a\nb", true),
            (r"(?m)a$", "a\nb", true),
            (r"(?m)a$", "ab", false),
            // CRLF mode: a line ends before `\r`, and `\r\n` is one break.
            (r"(?mR)a$", "a\r\nb", true),
            (r"(?mR)^b", "a\r\nb", true),
            (r"(?mR)^\nb", "a\r\nb", false),
            (r"(?m)^\nb", "a\r\nb", false),
            (r"(?mR)$\n", "a\r\nb", false),
            (r"(?m)$\n", "a\r\nb", true),
            // Only between characters, as regex-lite decides: inside `é` both sides are non-word
            // bytes, but `\B` does not hold there (nor did it with the former dense DFA).
            (r"\B", "aéa", false),
            (r"\B", "S١a", false),
            (r"\B", "é", true),
            (r"\b{end-half}", "aé", true),
            (r"a\b{end-half}", "aé", true),
            (r"\b{start-half}\b{end-half}", "éa", true),
            (r"^\b{start-half}\b{end-half}", "a", false),
            ("", "", true),
            ("^$", "", true),
            ("^$", "a", false),
            ("[^a]", "é", true),
            ("^.$", "é", true),
            ("^..$", "é", false),
        ];
        for &(pattern, haystack, want) in cases {
            assert_eq!(
                dfa(pattern).is_match(haystack.as_bytes()),
                want,
                "/{pattern}/ on {haystack:?}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn states_remember_the_previous_byte_only_when_an_assertion_reads_it() {
        // `[a-z]+x` has no assertion: word and other bytes lead to the same states. With `\b`
        // in front, the DFA must tell them apart and has more states.
        let plain = dfa("[a-z]+x");
        let bounded = dfa(r"\b[a-z]+x");
        assert!(plain.at_end.len() < bounded.at_end.len());
        assert!(plain.is_match(b"-abx") && bounded.is_match(b"-abx"));
        assert!(plain.is_match(b"9abx") && !bounded.is_match(b"9abx"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_anchored_search_stops_at_the_first_byte_that_cannot_match() {
        let d = dfa("^ab");
        let after_x = d.next(d.start(), b'x');
        assert!(d.is_dead(after_x));
        assert!(!d.is_match(b"xab"));
        // The match is known once `ab` is read, whatever follows.
        let after_ab = d.next(d.next(d.start(), b'a'), b'b');
        assert!(d.ends_in_match(after_ab));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn limits_refuse_large_automata() {
        let node = regex::parse(
            "^.{200}$",
            Limits {
                nesting: 128,
                repetition: 1000,
            },
        )
        .unwrap_or(regex::Node::Empty);
        assert_eq!(regex::nfa(&node, 1_000).err(), Some(TooLarge));
        let nfa = regex::nfa(&node, 1 << 20).unwrap_or_else(|_| panic!("NFA"));
        assert!(Dfa::new(&nfa, 4_096, 1 << 20).is_err());
        assert!(Dfa::new(&nfa, 1 << 20, 4_096).is_err());
        let fits = Dfa::new(&nfa, 1 << 20, 1 << 20).unwrap_or_else(|_| panic!("DFA"));
        assert!(fits.memory_usage() <= (1 << 20) + 4096);
        assert!(fits.is_match("é".repeat(200).as_bytes()));
        assert!(!fits.is_match("é".repeat(199).as_bytes()));
    }
}
