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
/// Compiled size of one regex, in bytes (regex-lite's own accounting).
pub const MAX_REGEX_COMPILED: usize = 1 << 20;
/// Diagnostics kept for one program: past this, a single "too many errors" closes the report
/// (a megabyte of junk must not become a gigabyte of log, nor take quadratic time to render).
pub const MAX_DIAGNOSTICS: usize = 100;
