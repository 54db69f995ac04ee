//! ptp4l: offsets and summaries, port states, clock-class lines, HA profile selection.

use super::*;

impl Engine {
    /// Handles one ptp4l line (dispatched by [`Engine::apply`]).
    pub(super) fn ptp4l_line(&mut self, line: ParsedLine<'_>, now: Nanos, out: &mut Vec<Change>) {
        match line {
            ParsedLine::ClockClassChange { config, class } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                if g.class != Some(class) {
                    g.class = Some(class);
                    let ra = self.ctx.master_ra(g.main_iface());
                    out.push(Change {
                        resource: Resource::ClockClass,
                        values: vec![Value::metric(ra, class)],
                    });
                }
            }
            ParsedLine::Ptp4lOffset {
                config,
                servo,
                offset,
                freq,
                delay,
            } => {
                let gi = self.group_idx(config);
                let th = self.groups[gi].thresholds(self.ctx.default_thresholds);
                let g = &mut self.groups[gi];
                g.ptp4l.set(offset, offset, freq, delay);
                if !servo.valid() {
                    return;
                }
                let in_range = th.in_range(offset);
                g.ptp4l.state = Some(step(g.ptp4l.state, servo.locked(), in_range));
                if g.kind == Kind::Ptp4l {
                    g.main.offset = offset;
                    let new = step(g.main.state, servo.locked(), in_range);
                    self.set_main(gi, new, out);
                }
            }
            ParsedLine::Ptp4lSummary {
                config,
                rms,
                max,
                freq,
                delay,
            } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                g.ptp4l.set(rms, max, freq, delay);
                g.ptp4l_summary = true;
            }
            ParsedLine::PortEvent {
                config,
                port,
                iface,
                change,
                ..
            } => {
                let Some(change) = change else { return };
                if port == 0 {
                    return;
                }
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                let known = g.ports.iter().position(|p| p.number == port);
                let pi = match known {
                    Some(i) => i,
                    None => {
                        let name = iface.map(str::to_owned).or_else(|| {
                            g.profile
                                .as_ref()
                                .and_then(|p| p.interfaces.get(usize::from(port) - 1).cloned())
                        });
                        g.ports.push(Port {
                            number: port,
                            placeholder: name.is_none(),
                            iface: name.unwrap_or_else(|| format!("port{port}")),
                            role: PortRole::Unknown,
                        });
                        g.ports.len() - 1
                    }
                };
                if let Some(i) = iface
                    && g.ports[pi].iface != i
                {
                    g.ports[pi].iface = i.to_owned();
                    g.ports[pi].placeholder = false;
                }
                let old = g.ports[pi].role;
                g.ports[pi].role = change.role;
                if change.role == PortRole::Slave {
                    if g.slave_iface.as_deref() != Some(g.ports[pi].iface.as_str()) {
                        g.slave_iface = Some(g.ports[pi].iface.clone());
                    }
                } else if old == PortRole::Slave && change.implies_holdover {
                    g.ptp4l.state = g.ptp4l.state.map(|s| {
                        if g.kind == Kind::Ptp4l && s == SyncState::Locked {
                            SyncState::Holdover
                        } else {
                            SyncState::Freerun
                        }
                    });
                    if g.kind == Kind::Ptp4l && g.main.state == Some(SyncState::Locked) {
                        let th = g.thresholds(self.ctx.default_thresholds);
                        g.main.holdover_deadline =
                            Some(now.saturating_add(nanos(th.hold_over_timeout)));
                        self.set_main(gi, SyncState::Holdover, out);
                    }
                } else if known.is_none()
                    && change.implies_holdover
                    && g.kind == Kind::Ptp4l
                    && g.main.state.is_none()
                {
                    // The first word about this port is that it left SLAVE (or never got there):
                    // the producer started, or restarted, after the clock lost its master, and
                    // the daemon's replay begins here. When that was is unknown, so holdover
                    // cannot be timed: FREERUN, rather than nothing (a consumer told HOLDOVER
                    // by the producer before its restart would wait for FREERUN forever).
                    g.ptp4l.state = Some(SyncState::Freerun);
                    self.set_main(gi, SyncState::Freerun, out);
                }
            }
            ParsedLine::HaProfile {
                config,
                profile,
                state,
            } => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                match g.ha.iter_mut().find(|(p, _)| p == profile) {
                    Some(e) => e.1 = state,
                    None => g.ha.push((profile.to_owned(), state)),
                }
            }
            _ => {}
        }
    }
}
