//! T-BC: the daemon's `T-BC-STATUS` lines (the decisions are `crate::tbc`'s, run by the daemon).

use super::*;

impl Engine {
    /// Handles one T-BC status line (dispatched by [`Engine::apply`]).
    pub(super) fn tbc_line(&mut self, line: ParsedLine<'_>, out: &mut Vec<Change>) {
        let ParsedLine::TbcStatus {
            config,
            iface,
            offset,
            state,
        } = line
        else {
            return;
        };
        let gi = self.group_idx(config);
        let g = &mut self.groups[gi];
        g.kind = Kind::TBc;
        if g.main.iface.as_deref() != Some(iface) {
            g.main.iface = Some(iface.to_owned());
        }
        g.main.offset = offset;
        self.set_main(gi, state, out);
    }
}
