//! The T-GM decision (linuxptp-daemon `updateGMState`, reference §3.6) as a pure function.

use oran_api::{ClockClass, SyncState};

/// The GNSS component as the daemon reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GnssInput {
    /// LOCKED or FREERUN.
    pub state: SyncState,
    /// Whether the source is lost (the daemon sets it with FREERUN on a bad fix or tAcc).
    pub source_lost: bool,
}

/// The inputs of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TgmInputs {
    /// The leading DPLL's state, if a DPLL is monitored.
    pub leading_dpll: Option<SyncState>,
    /// Whether any non-leading DPLL is not LOCKED.
    pub other_dpll_unlocked: bool,
    /// The GNSS component, if known.
    pub gnss: Option<GnssInput>,
    /// The ts2phc state (worst over its interfaces), if known.
    pub ts2phc: Option<SyncState>,
    /// The previous T-GM state.
    pub previous: Option<SyncState>,
}

/// Decides the T-GM state; `None` while there is nothing to decide from.
///
/// * DPLL FREERUN → FREERUN; DPLL HOLDOVER → HOLDOVER.
/// * A non-leading DPLL not LOCKED while the leading one is LOCKED → FREERUN.
/// * DPLL LOCKED or absent: GNSS LOCKED → the ts2phc state; GNSS lost → ts2phc HOLDOVER/FREERUN
///   as is, ts2phc LOCKED keeps the previous state (waiting for the DPLL to enter holdover);
///   GNSS FREERUN without loss → FREERUN; no GNSS information → the ts2phc state.
pub fn decide(i: TgmInputs) -> Option<SyncState> {
    match i.leading_dpll {
        Some(SyncState::Locked) if i.other_dpll_unlocked => return Some(SyncState::Freerun),
        Some(SyncState::Holdover) => return Some(SyncState::Holdover),
        Some(SyncState::Locked) | None => {}
        Some(_) => return Some(SyncState::Freerun),
    }
    match i.gnss {
        Some(g) if g.state == SyncState::Locked => i.ts2phc,
        Some(g) if g.source_lost => match i.ts2phc {
            Some(SyncState::Locked) => i.previous.or(Some(SyncState::Freerun)),
            other => other.or(Some(SyncState::Freerun)),
        },
        Some(_) => Some(SyncState::Freerun),
        None => i.ts2phc,
    }
}

/// The T-GM clock class of a state: LOCKED 6, HOLDOVER 7, else 248.
pub const fn tgm_class(s: SyncState) -> ClockClass {
    match s {
        SyncState::Locked => ClockClass::LOCKED,
        SyncState::Holdover => ClockClass::PRC_UNLOCKED_IN_SPEC,
        _ => ClockClass::DEFAULT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyncState::{Freerun as F, Holdover as H, Locked as L};

    fn g(state: SyncState, lost: bool) -> Option<GnssInput> {
        Some(GnssInput {
            state,
            source_lost: lost,
        })
    }

    #[test]
    fn section_3_6_table() {
        type S = Option<SyncState>;
        type Case = (S, bool, Option<GnssInput>, S, S, S);
        // (dpll, other dpll unlocked, gnss, ts2phc, previous) -> expected
        let cases: &[Case] = &[
            (Some(F), false, g(L, false), Some(L), Some(L), Some(F)),
            (Some(H), false, g(L, false), Some(L), Some(L), Some(H)),
            (Some(L), true, g(L, false), Some(L), Some(L), Some(F)),
            (Some(L), false, g(L, false), Some(L), None, Some(L)),
            (None, false, g(L, false), Some(L), None, Some(L)),
            (Some(L), false, g(L, false), Some(H), Some(L), Some(H)),
            (Some(L), false, g(L, false), Some(F), Some(L), Some(F)),
            (Some(L), false, g(F, true), Some(H), Some(L), Some(H)),
            (Some(L), false, g(F, true), Some(F), Some(L), Some(F)),
            (Some(L), false, g(F, true), Some(L), Some(L), Some(L)),
            (Some(L), false, g(F, true), Some(L), Some(H), Some(H)),
            (Some(L), false, g(F, false), Some(L), Some(L), Some(F)),
            (None, false, None, Some(L), None, Some(L)),
            (None, false, None, None, None, None),
        ];
        for (n, &(d, o, gn, ts, prev, want)) in cases.iter().enumerate() {
            let got = decide(TgmInputs {
                leading_dpll: d,
                other_dpll_unlocked: o,
                gnss: gn,
                ts2phc: ts,
                previous: prev,
            });
            assert_eq!(got, want, "case {n}");
        }
        assert_eq!(tgm_class(L).0, 6);
        assert_eq!(tgm_class(H).0, 7);
        assert_eq!(tgm_class(F).0, 248);
    }
}
