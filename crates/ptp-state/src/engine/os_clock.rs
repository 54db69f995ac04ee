//! The OS clock: phc2sys offsets and summaries, chronyd.

use super::*;

impl Engine {
    /// Handles one OS-clock line (dispatched by [`Engine::apply`]).
    pub(super) fn os_clock_line(&mut self, line: ParsedLine<'_>, out: &mut Vec<Change>) {
        match line {
            ParsedLine::Phc2sysOffset {
                config,
                clock,
                source,
                servo,
                offset,
                freq,
                delay,
            } => {
                if clock != "CLOCK_REALTIME" {
                    return;
                }
                let gi = self.group_idx(config);
                self.os.group = Some(gi);
                self.os.from = if source == "sys" { "sys" } else { "phc" };
                self.os.sample.set(offset, offset, freq, delay);
                self.os_sample(gi, servo, offset, out);
            }
            ParsedLine::Phc2sysSummary {
                config,
                clock,
                rms,
                max,
                freq,
                delay,
            } => {
                if clock != "CLOCK_REALTIME" {
                    return;
                }
                let gi = self.group_idx(config);
                self.os.group = Some(gi);
                if !self.os.sample.seen {
                    self.os.from = "master";
                }
                self.os.sample.set(rms, max, freq, delay);
            }
            ParsedLine::Chronyd { selected, .. } => {
                let s = if selected {
                    SyncState::Locked
                } else {
                    SyncState::Freerun
                };
                self.os.sample.state = Some(s);
                self.set_os(s, out);
            }
            _ => {}
        }
    }

    /// One phc2sys CLOCK_REALTIME sample: the worst of the phc2sys servo (with thresholds) and
    /// the state of the PTP clock it follows.
    pub(super) fn os_sample(
        &mut self,
        gi: usize,
        servo: Servo,
        offset: i64,
        out: &mut Vec<Change>,
    ) {
        if !servo.valid() {
            return;
        }
        let g = &self.groups[gi];
        let th = g.thresholds(self.ctx.default_thresholds);
        let own = step(self.os.sample.state, servo.locked(), th.in_range(offset));
        // The phc2sys servo has no holdover of its own.
        let own = if own == SyncState::Holdover {
            SyncState::Freerun
        } else {
            own
        };
        self.os.sample.state = Some(own);
        let new = worst(Some(own), g.main.state).unwrap_or(own);
        self.set_os(new, out);
    }
}
