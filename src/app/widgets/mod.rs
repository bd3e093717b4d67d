//! One widget per screen region. Each borrows what it draws from the model for one frame.

pub mod members;
pub mod messages;
pub mod overlays;
pub mod sidebar;
pub mod status;
