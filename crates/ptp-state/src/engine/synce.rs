//! SyncE: synce4l lock state and quality levels.

use super::*;

impl Engine {
    /// Handles one SyncE line (dispatched by [`Engine::apply`]).
    pub(super) fn synce_line(&mut self, line: ParsedLine<'_>, out: &mut Vec<Change>) {
        match line {
            ParsedLine::SynceLock {
                config,
                iface,
                device,
                state,
            } => {
                let i = self.synce_idx(config, device, iface);
                self.set_synce_state(i, state, out);
            }
            ParsedLine::SynceQuality {
                config,
                iface,
                device,
                ql,
                ext_ql,
                network_option,
            } => {
                let i = self.synce_idx(config, device, iface);
                let p = &mut self.synce[i];
                p.network_option = network_option;
                if p.ql != Some((ql, ext_ql)) {
                    p.ql = Some((ql, ext_ql));
                    let mut values = Vec::with_capacity(2);
                    synce_quality_values(&self.ctx, p, &mut values);
                    out.push(Change {
                        resource: Resource::SynceClockQuality,
                        values,
                    });
                }
            }
            _ => {}
        }
    }

    pub(super) fn set_synce_state(&mut self, i: usize, state: SyncState, out: &mut Vec<Change>) {
        let p = &mut self.synce[i];
        if p.state == Some(state) {
            return;
        }
        p.state = Some(state);
        out.push(Change {
            resource: Resource::SynceLockState,
            values: vec![Value::notification(synce_ra(&self.ctx, p), state)],
        });
    }
    pub(super) fn synce_idx(&mut self, config: &str, device: &str, iface: &str) -> usize {
        if let Some(i) = self
            .synce
            .iter()
            .position(|p| p.iface == iface && p.device == device && p.config == config)
        {
            return i;
        }
        self.synce.push(SyncePort {
            config: config.to_owned(),
            device: device.to_owned(),
            iface: iface.to_owned(),
            state: None,
            ql: None,
            network_option: None,
        });
        self.synce.len() - 1
    }
}

pub(super) fn synce_ra(ctx: &Ctx, p: &SyncePort) -> String {
    value_address(&ctx.node, &format!("{}/{}", p.device, p.iface))
}

pub(super) fn synce_quality_values(ctx: &Ctx, p: &SyncePort, out: &mut Vec<Value>) {
    if let Some((ql, ext)) = p.ql {
        let ra = synce_ra(ctx, p);
        out.push(Value::metric(format!("{ra}/Ql"), ql));
        out.push(Value::metric(format!("{ra}/extQl"), ext.unwrap_or(255)));
    }
}
