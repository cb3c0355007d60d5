//! Core instances for validation, so Broadcast streams validate in parallel; the
//! cutter's instance belongs to the chain alone. A config block replaces the config,
//! a swap replaces the component: idle instances of the old one are dropped, busy
//! ones finish their call on it.

use crate::component::{CoreChannel, CoreComponent, FaultSink, OpenError};
use bytes::Bytes;
use ordering_core::NativeCrypto;
use ordering_core::config::ChannelConfig;
use std::sync::{Arc, Mutex, RwLock};

pub struct ValidatorPool {
    tip_header: Bytes,
    state: RwLock<PoolState>,
    idle: Mutex<Vec<Idle>>,
    faults: Arc<dyn FaultSink>,
}

struct PoolState {
    /// The latest config block.
    config_block: Bytes,
    /// Its config sequence.
    sequence: u64,
    /// Its `BatchSize.AbsoluteMaxBytes`.
    absolute_max_bytes: u32,
    /// The component in force.
    core: Arc<CoreComponent>,
}

struct Idle {
    sequence: u64,
    core: Arc<CoreComponent>,
    instance: CoreChannel,
}

impl ValidatorPool {
    /// Validation under `config` (parsed from `config_block`), on instances of `core`
    /// opened at `tip_header` (validation does not depend on the tip).
    pub fn new(
        config: &ChannelConfig,
        config_block: Bytes,
        tip_header: Bytes,
        core: Arc<CoreComponent>,
        faults: Arc<dyn FaultSink>,
    ) -> Self {
        ValidatorPool {
            tip_header,
            state: RwLock::new(PoolState {
                config_block,
                sequence: config.sequence,
                absolute_max_bytes: config.batch_size.absolute_max_bytes,
                core,
            }),
            idle: Mutex::default(),
            faults,
        }
    }

    /// Runs `f` on an idle instance of the current config and component, opening one
    /// if needed. A fault is counted; the faulted instance is dropped.
    pub fn with<R>(&self, f: impl FnOnce(&mut CoreChannel) -> R) -> Result<R, OpenError> {
        let (config_block, sequence, core) = {
            let state = self.state.read().unwrap();
            (
                state.config_block.clone(),
                state.sequence,
                state.core.clone(),
            )
        };
        let idle = {
            let mut idle = self.idle.lock().unwrap();
            idle.retain(|i| i.sequence == sequence && Arc::ptr_eq(&i.core, &core));
            idle.pop()
        };
        let mut instance = match idle {
            Some(idle) => idle.instance,
            None => core
                .open_channel(&config_block, &self.tip_header)
                .inspect_err(|e| {
                    if let OpenError::Fault(fault) = e {
                        self.faults.record_fault(&core, fault);
                    }
                })?,
        };
        let out = f(&mut instance);
        if let Some(fault) = instance.fault() {
            self.faults.record_fault(&core, fault);
            return Ok(out);
        }
        let current = {
            let state = self.state.read().unwrap();
            state.sequence == sequence && Arc::ptr_eq(&state.core, &core)
        };
        if current {
            self.idle.lock().unwrap().push(Idle {
                sequence,
                core,
                instance,
            });
        }
        Ok(out)
    }

    /// A new config is in force (its block is in the ledger).
    pub fn reconfigure(&self, config_block: Bytes, sequence: u64) {
        let absolute_max_bytes = ChannelConfig::from_config_block(&config_block, &NativeCrypto)
            .map(|config| config.batch_size.absolute_max_bytes)
            .inspect_err(|e| tracing::error!("reading the new config natively: {e}"))
            .ok();
        {
            let mut state = self.state.write().unwrap();
            state.config_block = config_block;
            state.sequence = sequence;
            if let Some(max) = absolute_max_bytes {
                state.absolute_max_bytes = max;
            }
        }
        self.idle.lock().unwrap().clear();
    }

    /// A new component is in force.
    pub fn set_core(&self, core: Arc<CoreComponent>) {
        self.state.write().unwrap().core = core;
        let idle = std::mem::take(&mut *self.idle.lock().unwrap());
        drop(idle);
    }

    /// The sequence of the config validations run under.
    pub fn sequence(&self) -> u64 {
        self.state.read().unwrap().sequence
    }

    /// The channel's `BatchSize.AbsoluteMaxBytes`: Broadcast refuses bigger messages
    /// before they enter the core.
    pub fn absolute_max_bytes(&self) -> u32 {
        self.state.read().unwrap().absolute_max_bytes
    }

    /// The latest config block and its sequence.
    pub fn config(&self) -> (Bytes, u64) {
        let state = self.state.read().unwrap();
        (state.config_block.clone(), state.sequence)
    }
}
