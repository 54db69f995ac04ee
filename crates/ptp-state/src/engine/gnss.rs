//! T-GM sources: ts2phc offsets, NMEA and timestamp validity, DPLL, GNSS, and the daemon's T-GM status lines.

use super::*;

impl Engine {
    /// Handles one T-GM source line (dispatched by [`Engine::apply`]).
    pub(super) fn gnss_line(&mut self, line: ParsedLine<'_>, out: &mut Vec<Change>) {
        match line {
            ParsedLine::Ts2phcOffset {
                config,
                iface,
                offset,
                servo,
                freq,
                holdover,
            } => {
                let gi = self.group_idx(config);
                let th = self.groups[gi].thresholds(self.ctx.default_thresholds);
                let g = &mut self.groups[gi];
                g.no_source_ts = 0;
                let e = g.ts2phc_entry(iface);
                e.sample.set(offset, offset, freq, Some(0));
                e.sample.state = Some(if holdover {
                    SyncState::Holdover
                } else if servo.is_some_and(Servo::locked) && th.in_range(offset) {
                    SyncState::Locked
                } else {
                    SyncState::Freerun
                });
                self.derive_tgm(gi, out);
            }
            ParsedLine::NmeaStatus {
                config,
                iface,
                status,
                offset,
            } => {
                let gi = self.group_idx(config);
                let e = self.groups[gi].ts2phc_entry(iface);
                e.nmea = Some(status);
                e.sample.seen = true;
                e.sample.offset = offset;
                e.sample.max = offset;
            }
            ParsedLine::SourceTsNotValid { config } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                g.no_source_ts = (g.no_source_ts + 1).min(2);
                self.derive_tgm(gi, out);
            }
            ParsedLine::Dpll {
                config,
                iface,
                frequency_status,
                phase_status,
                pps_status,
                offset,
                state,
            } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                let entry = DpllEntry {
                    iface: String::new(),
                    frequency_status,
                    phase_status,
                    pps_status,
                    offset,
                    state,
                };
                match g.dpll.iter_mut().find(|d| d.iface == iface) {
                    Some(d) => {
                        *d = DpllEntry {
                            iface: std::mem::take(&mut d.iface),
                            ..entry
                        }
                    }
                    None => g.dpll.push(DpllEntry {
                        iface: iface.to_owned(),
                        ..entry
                    }),
                }
                self.derive_tgm(gi, out);
            }
            ParsedLine::Gnss {
                config,
                iface,
                gnss_status,
                offset,
                state,
            } => {
                let gi = self.group_idx(config);
                let published = if state == SyncState::Locked {
                    SyncState::Synchronized
                } else if gnss_status >= 1 {
                    SyncState::AcquiringSync
                } else {
                    SyncState::FailureNofix
                };
                let g = &mut self.groups[gi];
                let i = match g.gnss.iter().position(|e| e.iface == iface) {
                    Some(i) => i,
                    None => {
                        g.gnss.push(GnssEntry {
                            iface: iface.to_owned(),
                            gps_fix: gnss_status,
                            offset,
                            state,
                            published,
                        });
                        let mut values = Vec::with_capacity(3);
                        gnss_values(&self.ctx, &g.gnss[g.gnss.len() - 1], &mut values);
                        out.push(Change {
                            resource: Resource::GnssSyncStatus,
                            values,
                        });
                        self.derive_tgm(gi, out);
                        return;
                    }
                };
                let e = &mut g.gnss[i];
                e.gps_fix = gnss_status;
                e.offset = offset;
                e.state = state;
                if e.published != published {
                    e.published = published;
                    let mut values = Vec::with_capacity(3);
                    gnss_values(&self.ctx, e, &mut values);
                    out.push(Change {
                        resource: Resource::GnssSyncStatus,
                        values,
                    });
                }
                self.derive_tgm(gi, out);
            }
            ParsedLine::GmStatus {
                config,
                iface,
                state,
            } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                g.kind = Kind::TGm;
                g.gm_line_seen = true;
                if g.main.iface.as_deref() != Some(iface) {
                    g.main.iface = Some(iface.to_owned());
                }
                g.main.offset = g
                    .ts2phc
                    .iter()
                    .find(|e| e.iface == iface)
                    .map_or(g.main.offset, |e| e.sample.offset);
                self.set_main(gi, state, out);
            }
            _ => {}
        }
    }

    /// Re-derives a T-GM state from its components while no `GM[...]` line has been seen.
    pub(super) fn derive_tgm(&mut self, gi: usize, out: &mut Vec<Change>) {
        let g = &mut self.groups[gi];
        if g.kind != Kind::TGm || g.gm_line_seen {
            return;
        }
        let leading = g
            .profile
            .as_ref()
            .and_then(|p| p.leading_interface.clone())
            .or_else(|| g.dpll.first().map(|d| d.iface.clone()))
            .or_else(|| g.ts2phc.first().map(|t| t.iface.clone()));
        let Some(leading) = leading else { return };
        let leading_dpll = g.dpll.iter().find(|d| d.iface == leading).map(|d| d.state);
        let other_dpll_unlocked = g
            .dpll
            .iter()
            .any(|d| d.iface != leading && d.state != SyncState::Locked);
        let gnss = g
            .gnss
            .iter()
            .map(|e| Some(e.state))
            .fold(None, worst)
            .map(|s| GnssInput {
                state: s,
                source_lost: s != SyncState::Locked,
            });
        let mut ts2phc = g.ts2phc.iter().map(|e| e.sample.state).fold(None, worst);
        if g.no_source_ts >= 2 {
            ts2phc = Some(SyncState::Freerun);
        }
        let Some(new) = tgm::decide(TgmInputs {
            leading_dpll,
            other_dpll_unlocked,
            gnss,
            ts2phc,
            previous: g.main.state,
        }) else {
            return;
        };
        g.main.offset = g
            .ts2phc
            .iter()
            .find(|e| e.iface == leading)
            .or(g.ts2phc.first())
            .map_or(0, |e| e.sample.offset);
        g.main.iface = Some(leading);
        self.set_main(gi, new, out);
    }
}

pub(super) fn gnss_values(ctx: &Ctx, e: &GnssEntry, out: &mut Vec<Value>) {
    let ra = ctx.master_ra(Some(&e.iface));
    out.push(Value::notification(ra.clone(), e.published));
    out.push(Value::metric(ra.clone(), e.offset));
    out.push(Value::metric(format!("{ra}/gpsFix"), e.gps_fix));
}
