//! The statefile cycle: write our section (and the global one when needed), then read the
//! whole file and update the statefile domain inputs.
//!
//! It must never trust a section that fails its checks, nor issue a second operation while one
//! is outstanding.

use super::*;

impl Agent {
    pub(super) fn on_written(&mut self, r: Result<(), StorageError>) {
        match self.sf_op {
            SfOp::WritingHost => {
                if r.is_ok() {
                    self.sf_written_seq = Some(self.sf_seq);
                    if self.shutdown_pending {
                        self.stop("clean shutdown: excluded");
                        return;
                    }
                } else {
                    self.sf_written_seq = None;
                    if self.shutdown_pending {
                        self.fence(FenceReason::ShutdownFailed);
                        return;
                    }
                }
                if self.global_write.is_some() {
                    let g = self.global_write.clone().expect("checked");
                    self.sf_op = SfOp::WritingGlobal;
                    self.out.push_back(Output::WriteStatefile {
                        slot: Slot::Global,
                        offset: 0,
                        bytes: g.encode(),
                    });
                } else {
                    self.start_read();
                }
            }
            SfOp::WritingGlobal => {
                let written = self.global_write.take();
                if r.is_ok() {
                    if self.disable_pending {
                        self.stop("HA disabled: pool state INVALID written");
                        return;
                    }
                    if let (Some(epoch), Some(g)) = (self.claiming.take(), written) {
                        if g.epoch == epoch && self.armed && self.phase.is_member() {
                            self.master_epoch = Some(epoch);
                            self.known_epoch = self.known_epoch.max(epoch);
                            self.out.push_back(Output::BecameMaster { epoch });
                        }
                    }
                } else {
                    self.claiming = None;
                    if self.disable_pending {
                        self.stop("HA disabled (INVALID not written: local only)");
                        return;
                    }
                }
                self.start_read();
            }
            _ => {}
        }
    }

    pub(super) fn start_read(&mut self) {
        self.sf_op = SfOp::Reading;
        self.out.push_back(Output::ReadStatefile {
            len: statefile::file_size(self.n),
        });
    }

    pub(super) fn on_read(&mut self, r: Result<Vec<u8>, StorageError>) {
        if self.sf_op != SfOp::Reading {
            return;
        }
        self.sf_op = SfOp::Idle;
        let interval =
            if self.fh_started.is_some() || (self.lock_request && self.master_epoch.is_none()) {
                self.t.sf_interval_fast
            } else {
                self.t.sf_interval
            };
        self.next_sf = (self.sf_cycle_start + interval).max(self.now);
        let Ok(bytes) = r else { return };
        let snap = statefile::parse(&bytes, self.n, &self.cfg.generation);
        for (i, sec) in snap.hosts.into_iter().enumerate() {
            match sec {
                Ok(sec) => {
                    self.corrupt.remove(i);
                    if i == self.me {
                        if Some(sec.sequence) == self.sf_written_seq {
                            self.my_sf_ok_at = Some(self.now);
                        }
                        continue;
                    }
                    let moved = self.sections[i]
                        .as_ref()
                        .is_none_or(|old| old.sequence != sec.sequence);
                    if moved {
                        self.seq_changed_at[i] = Some(self.now);
                    }
                    if sec.excluded {
                        self.excluded.insert(i);
                    } else {
                        self.excluded.remove(i);
                    }
                    self.known_epoch = self.known_epoch.max(sec.epoch);
                    self.sections[i] = Some(sec);
                }
                Err(statefile::SectionError::Empty) => {}
                Err(e) => {
                    if !self.corrupt.contains(i) {
                        self.out.push_back(Output::Warning(format!(
                            "statefile section of h{i} not trusted: {e}"
                        )));
                    }
                    self.corrupt.insert(i);
                }
            }
        }
        let fresh_global = match snap.global {
            Ok(g) => {
                self.known_epoch = self.known_epoch.max(g.epoch);
                self.global = Some(g.clone());
                Some(g)
            }
            Err(e) => {
                self.out.push_back(Output::Warning(format!(
                    "statefile global section not trusted: {e}"
                )));
                // A master repairs the global section it owns.
                if let (Some(epoch), Some(g)) = (self.master_epoch, self.global.clone()) {
                    if self.global_write.is_none() {
                        self.global_write = Some(GlobalSection {
                            epoch,
                            master: Some(self.me as u16),
                            ..g
                        });
                    }
                }
                None
            }
        };
        if let Some(g) = &fresh_global {
            if g.pool_state == PoolState::Invalid
                && !self.disable_pending
                && self.phase != Phase::Stopped
            {
                self.disarm("pool state INVALID");
                self.stop("HA disabled by the pool");
                return;
            }
        }
        self.run_lock(fresh_global);
    }

    pub(super) fn start_sf_cycle(&mut self) {
        self.sf_cycle_start = self.now;
        self.sf_seq += 1;
        let sec = HostSection {
            generation: self.cfg.generation,
            index: self.me as u16,
            uuid: self.cfg.hosts[self.me],
            sequence: self.sf_seq,
            excluded: self.i_am_excluded,
            starting: self.phase == Phase::Starting,
            phase: if self.shutdown_pending {
                Phase::Stopped
            } else {
                self.phase
            },
            sf_access: self.sf_access(),
            sr2: self.sr2,
            lock_request: self.lock_request,
            lock_grant: self.lock_grant.map(|g| g as u16),
            epoch: self.known_epoch,
            current: self.published_current(),
            proposed: self.proposed(),
            hbdomain: self.hbdomain(),
            sfdomain: self.sfdomain(),
        };
        self.sf_op = SfOp::WritingHost;
        self.out.push_back(Output::WriteStatefile {
            slot: Slot::Host(self.me),
            offset: statefile::host_offset(self.me),
            bytes: sec.encode(self.words),
        });
    }
}
