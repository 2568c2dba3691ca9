//! From Confluent-framed bytes to a [`RawRecord`], for any writer schema the registry knows.
//!
//! Each writer schema id gets a [`Plan`] (a decoder specialised to it) when it is covered;
//! whatever a plan cannot read goes through [`rivulet_common::avro::Resolver`], apache-avro's
//! generic resolution to the newest raw schema (v3), which also words every error. Fields an
//! older writer lacked arrive as `None`; then the record is validated.

use std::collections::HashMap;

use apache_avro::Schema;
use rivulet_common::avro::Resolver;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio::runtime::Handle;

pub use rivulet_common::avro::Reject;

use crate::fast::Plan;
use crate::record::{Invalid, RawRecord};

/// Decodes raw-data-in messages. Blocking (it may call the registry): use it on the pipeline
/// thread, never inside async code.
pub struct Decoder {
    resolver: Resolver,
    plans: HashMap<u32, Option<Plan>>,
}

fn invalid(e: Invalid) -> Reject {
    Reject::Invalid(format!("invalid value: {e}"))
}

impl Decoder {
    /// A decoder resolving every writer schema to `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        Self {
            resolver: Resolver::new(settings, runtime, reader),
            plans: HashMap::new(),
        }
    }

    /// Teaches the decoder a writer schema without asking the registry (benchmarks, tests).
    pub fn know(&mut self, id: u32, writer: Schema) -> Result<(), Reject> {
        self.resolver.insert(id, writer)
    }

    /// The record in `payload`.
    pub fn decode(&mut self, payload: Option<&[u8]>) -> Result<RawRecord, Reject> {
        if let Some(Ok((id, body))) = payload.map(rivulet_common::avro::unframe) {
            if !self.plans.contains_key(&id) {
                let writer = self.resolver.writer(id)?;
                let plan = Plan::compile(writer, self.resolver.reader());
                self.plans.insert(id, plan);
            }
            let fast = self.plans.get(&id).and_then(Option::as_ref);
            if let Some(fields) = fast.and_then(|plan| plan.decode(body)) {
                return RawRecord::checked(fields).map_err(invalid);
            }
        }
        let value = self.resolver.decode(payload)?;
        RawRecord::from_value(&value).map_err(invalid)
    }
}
