//! The page (cockpit/web/) and the browser bundle (target/cockpit-web/), embedded by build.rs;
//! empty, with the list of what was missing, when they were not there at build time.

include!(concat!(env!("OUT_DIR"), "/cockpit_assets.rs"));
