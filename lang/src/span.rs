//! Byte ranges into the program text. Tokens and syntax nodes carry spans, not line/column pairs,
//! so positions cost nothing until a diagnostic is rendered.

/// A half-open byte range `start..end` into the program source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn text(self, source: &str) -> &str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// 1-based line and column (in characters) of a byte offset, plus the text of that line.
pub fn line_col(source: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = source
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    let rest = source.get(line_start..).unwrap_or("");
    let line_text = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
    (line, column, line_text)
}

/// Line numbers for many offsets of one source in O(log n) each.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn positions_are_one_based_and_count_characters() {
        let src = "ab\nçd ef\n";
        assert_eq!(line_col(src, 0), (1, 1, "ab"));
        assert_eq!(line_col(src, 3), (2, 1, "çd ef"));
        // 'ç' is two bytes but one column.
        assert_eq!(line_col(src, 6), (2, 3, "çd ef"));
        assert_eq!(line_col(src, 100), (3, 1, ""));
        let index = LineIndex::new(src);
        for offset in (0..src.len()).filter(|&o| src.is_char_boundary(o)) {
            assert_eq!(index.line(offset), line_col(src, offset).0, "{offset}");
        }
    }
}
