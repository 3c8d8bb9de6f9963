//! What happened to a colored request, read once when its stream ends (proxy-wasm `on_log`):
//! the response's status class and how long the request took. Decoded here, without the host,
//! from the bytes Envoy hands back for the `response.code` and `request.duration` properties,
//! so the filter only fetches and records. Anything that does not decode is absent, never an
//! error: a request is never failed over its metrics.

/// A response's status class, the `class` label of `traffic_color_responses_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// `101 Switching Protocols` is a final status for an upgraded (WebSocket) stream.
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl StatusClass {
    /// Every class, in label order; [`StatusClass::index`] indexes it.
    pub const ALL: [StatusClass; 5] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
    ];

    /// The class of an HTTP status code; `None` outside 100..=599. Envoy reports 0 when no
    /// response was sent (the client went away first): such a request has no class.
    pub fn of(code: u64) -> Option<StatusClass> {
        Some(match code {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => return None,
        })
    }

    /// The label value, as Envoy spells its own `response_code_class`.
    pub fn label(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One request's outcome; each part is absent when the host did not say, or said nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub class: Option<StatusClass>,
    /// Whole milliseconds, rounded down as Envoy's own `_ms` histograms and Istio's
    /// `istio_request_duration_milliseconds` do, so the two can be compared.
    pub duration_ms: Option<u64>,
}

impl Outcome {
    /// From the raw property values: `response.code` (an integer) and `request.duration` (a
    /// duration), each of which Envoy serializes as an 8-byte little-endian signed integer, the
    /// duration in nanoseconds. Any other length, or a negative value, is absent.
    pub fn from_properties(code: Option<&[u8]>, duration_ns: Option<&[u8]>) -> Outcome {
        Outcome {
            class: code.and_then(le_u64).and_then(StatusClass::of),
            duration_ms: duration_ns.and_then(le_u64).map(|ns| ns / 1_000_000),
        }
    }
}

/// An 8-byte little-endian integer that is not negative as a signed one.
fn le_u64(bytes: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    u64::try_from(i64::from_le_bytes(bytes)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn le(v: i64) -> [u8; 8] {
        v.to_le_bytes()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn classes_and_their_labels() {
        let got: Vec<Option<&str>> = [
            0, 99, 100, 101, 200, 204, 299, 302, 404, 499, 500, 503, 599, 600, 1000,
        ]
        .into_iter()
        .map(|c| StatusClass::of(c).map(StatusClass::label))
        .collect();
        let want = [
            None,
            None,
            Some("1xx"),
            Some("1xx"),
            Some("2xx"),
            Some("2xx"),
            Some("2xx"),
            Some("3xx"),
            Some("4xx"),
            Some("4xx"),
            Some("5xx"),
            Some("5xx"),
            Some("5xx"),
            None,
            None,
        ];
        assert_eq!(got, want);
        for (i, c) in StatusClass::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn decodes_what_envoy_sends() {
        // Seen from Envoy 1.40: a 503 local reply after 0.42 ms.
        let o = Outcome::from_properties(Some(&le(503)), Some(&le(422_010)));
        assert_eq!(o.class, Some(StatusClass::ServerError));
        assert_eq!(o.duration_ms, Some(0));
        let o = Outcome::from_properties(Some(&le(200)), Some(&le(30_999_999)));
        assert_eq!(
            (o.class, o.duration_ms),
            (Some(StatusClass::Success), Some(30))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_values_are_absent() {
        let absent = Outcome {
            class: None,
            duration_ms: None,
        };
        assert_eq!(Outcome::from_properties(None, None), absent);
        assert_eq!(Outcome::from_properties(Some(b""), Some(b"")), absent);
        assert_eq!(
            Outcome::from_properties(Some(b"200"), Some(&[1, 2, 3])),
            absent
        );
        assert_eq!(
            Outcome::from_properties(Some(&[0; 9]), Some(&le(-1))),
            absent
        );
        assert_eq!(
            Outcome::from_properties(Some(&le(0)), Some(&le(i64::MIN))),
            absent
        );
        assert_eq!(
            Outcome::from_properties(Some(&le(-200)), Some(&le(i64::MAX))).duration_ms,
            Some(i64::MAX as u64 / 1_000_000)
        );
    }
}
