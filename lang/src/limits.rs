//! Bounds on what a program may ask for, so a config cannot make compilation or evaluation
//! slow or large. Each is reported with its own error when exceeded.

/// Bytes of program text.
pub const MAX_PROGRAM_BYTES: usize = 1 << 20;
/// Rules in one program (the benchmarks compile 1,000).
pub const MAX_RULES: usize = 10_000;
/// Nesting of `!`, parentheses and bucket keys.
pub const MAX_DEPTH: usize = 32;
/// Items in one `[..]` list.
pub const MAX_LIST_ITEMS: usize = 10_000;
/// Characters of one regex pattern.
pub const MAX_REGEX_CHARS: usize = 4_096;
/// Nesting of groups, repetitions and classes inside one regex.
pub const MAX_REGEX_NESTING: u32 = MAX_DEPTH as u32 * 4;
/// The largest count in `{n}`, `{n,}` or `{n,m}`: counted repetitions are what make small
/// patterns into large automata (`\w{10000}`); nested ones are caught by the size limits.
pub const MAX_REGEX_REPETITION: u32 = 1_000;
/// Heap of one regex's NFA, the intermediate form (dropped once the DFA is built).
pub const MAX_REGEX_NFA_BYTES: usize = 256 << 10;
/// Heap of one regex's DFA, kept for the life of the program (one copy per VM).
pub const MAX_REGEX_DFA_BYTES: usize = 256 << 10;
/// Scratch heap while determinizing one regex (dropped once the DFA is built).
pub const MAX_REGEX_DETERMINIZE_BYTES: usize = 1 << 20;
/// Heap of all the regexes' DFAs of one program together (one copy per VM). Also request time:
/// 16 scans over 2 MiB of tables took twice as long as over 1 MiB (cache misses).
pub const MAX_PROGRAM_DFA_BYTES: usize = 1 << 20;
/// Distinct regex tests (value, pattern) of one program that read their whole value: each
/// costs one pass over the value per request (identical tests share it), so this bounds a
/// request's regex work at 16 passes over Envoy's 60 KiB of headers: 3.3–7 ms in V8 on a
/// shared VM with the largest automata the program budget allows (BENCHMARKS.md). Patterns
/// answered by a literal (`^lit`, `^lit$`) do not count.
pub const MAX_REGEX_SCANS: usize = 16;
/// Diagnostics kept for one program: past this, a single "too many errors" closes the report
/// (a megabyte of junk must not become a gigabyte of log, nor take quadratic time to render).
pub const MAX_DIAGNOSTICS: usize = 100;
