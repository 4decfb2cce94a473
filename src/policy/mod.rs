//! Policy v2.0: loading, validation, and tool-call decisions.

pub mod model;
