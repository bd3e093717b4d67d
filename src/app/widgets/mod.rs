//! One widget per screen region. Each borrows what it draws from the model for one frame.

pub mod members;
pub mod messages;
pub mod overlays;
pub mod sidebar;
pub mod status;

impl crate::app::model::App {
    /// A room's label as this user reads it (see `RoomId::label_for`).
    pub fn room_label(&self, room: &crate::app::model::Room) -> String {
        let me = self
            .servers
            .get(room.server)
            .and_then(|s| s.me.as_ref())
            .map(|path| &path.user);
        room.id.label_for(me)
    }
}
