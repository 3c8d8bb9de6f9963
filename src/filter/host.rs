//! Every call this filter makes into the proxy, as the raw ABI, with the host's status returned
//! instead of trusted. The SDK's `hostcalls` panic on any status they do not expect, and a panic
//! in a request callback fails that request and, by default, every later one on the worker: so no
//! answer a host gives may panic here. A non-zero status is an `Err`, and callers treat it as
//! "absent" or log it.

use crate::metrics::Kind;
use proxy_wasm::types::{BufferType, MapType, MetricType};

/// The host's status code (0 is Ok, 1 NotFound, 2 BadArgument, … as proxy-wasm numbers them).
pub type Status = u32;

unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

/// Takes back a buffer the host filled. The host allocates it through this module's
/// `proxy_on_memory_allocate` (the SDK's: `Vec::with_capacity(size)`, then forgotten), so a
/// `Vec` of exactly that size owns it again; a null pointer means nothing was handed over.
fn take(status: u32, data: *mut u8, size: usize) -> Result<Option<Vec<u8>>, Status> {
    if status != 0 {
        return Err(status);
    }
    if data.is_null() {
        return Ok(None);
    }
    // SAFETY: see above; the pointer and size are the ones the host wrote for this call.
    Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) }))
}

/// Writes a log line; a host that refuses it has nowhere else to say so.
pub fn log(level: proxy_wasm::types::LogLevel, message: &str) {
    // SAFETY: pointer and length of a live &str.
    unsafe {
        proxy_log(level as u32, message.as_ptr(), message.len());
    }
}

/// The host's log level (0 trace … 5 critical).
pub fn log_level() -> Result<u32, Status> {
    let mut level = 0u32;
    // SAFETY: the host writes one u32 into `level`.
    match unsafe { proxy_get_log_level(&mut level) } {
        0 => Ok(level),
        status => Err(status),
    }
}

/// Asks for the root context's `on_tick` every `ms` milliseconds.
pub fn set_tick_period(ms: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    match unsafe { proxy_set_tick_period_milliseconds(ms) } {
        0 => Ok(()),
        status => Err(status),
    }
}

pub fn now_nanos() -> Result<u64, Status> {
    let mut t = 0u64;
    // SAFETY: the host writes one u64 into `t`.
    match unsafe { proxy_get_current_time_nanoseconds(&mut t) } {
        0 => Ok(t),
        status => Err(status),
    }
}

pub fn plugin_configuration() -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the host writes a buffer pointer and length, see `take`.
    let status = unsafe {
        proxy_get_buffer_bytes(
            BufferType::PluginConfiguration as u32,
            0,
            usize::MAX,
            &mut data,
            &mut size,
        )
    };
    take(status, data, size)
}

/// The request's header map, serialized (proxy-wasm's pairs encoding), in one call; the SDK's
/// `get_map_bytes` would copy every pair into two new allocations, the caller indexes it in place.
pub fn request_header_pairs() -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the host writes a buffer pointer and length, see `take`.
    let status = unsafe {
        proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size)
    };
    take(status, data, size)
}

/// The first value of a header; `Ok(None)` when absent (NotFound is absence, not an error).
pub fn header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: `name` is a live &str; the host writes a buffer pointer and length, see `take`.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        1 => Ok(None),
        _ => take(status, data, size),
    }
}

/// Replaces every value of a header by `value`, or removes them all for `None`.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live &strs.
    let status = unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    };
    match status {
        0 => Ok(()),
        status => Err(status),
    }
}

/// Adds a header value, keeping the values already there (`Set-Cookie`).
pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live &strs.
    let status = unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    match status {
        0 => Ok(()),
        status => Err(status),
    }
}

/// Sets a property of the current stream; Envoy keeps it as filter state `wasm.<name>`.
pub fn set_property(name: &str, value: &str) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live &strs.
    let status =
        unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    match status {
        0 => Ok(()),
        status => Err(status),
    }
}

/// A property by path (`["source", "address"]`); `Ok(None)` when the host has none.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    property_at(&path.join("\0"))
}

/// A property by its path already joined with NULs (`"response\0code"`): no allocation for a
/// path that is a constant.
pub fn property_at(path: &str) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: `path` is live; the host writes a buffer pointer and length, see `take`.
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    match status {
        1 => Ok(None),
        _ => take(status, data, size),
    }
}

/// Defines (or finds: the host keys metrics by name) a metric and returns its id.
pub fn define_metric(kind: Kind, name: &str) -> Result<u32, Status> {
    let kind = match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram => MetricType::Histogram,
    };
    let mut id = 0u32;
    // SAFETY: `name` is live; the host writes one u32 into `id`.
    let status = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    match status {
        0 => Ok(id),
        status => Err(status),
    }
}

pub fn define_counter(name: &str) -> Result<u32, Status> {
    define_metric(Kind::Counter, name)
}

pub fn increment(id: u32) -> Result<(), Status> {
    add(id, 1)
}

/// Adds `offset` to a counter or gauge (a gauge may go down).
pub fn add(id: u32, offset: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    match unsafe { proxy_increment_metric(id, offset) } {
        0 => Ok(()),
        status => Err(status),
    }
}

/// Records a histogram sample (or sets a gauge).
pub fn record(id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: no pointers.
    match unsafe { proxy_record_metric(id, value) } {
        0 => Ok(()),
        status => Err(status),
    }
}
