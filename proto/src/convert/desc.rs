//! What to run: [`ProcessSpec`], [`AppDescription`], [`DriverDescription`].

use super::{encode_owned, required, ConvertError};
use crate::pb;
use hearth_core::{AppDescription, DriverDescription, ProcessSpec};

impl From<&ProcessSpec> for pb::ProcessSpec {
    fn from(v: &ProcessSpec) -> Self {
        pb::ProcessSpec {
            argv: v.argv.clone(),
            env: v.env.clone(),
        }
    }
}

impl From<pb::ProcessSpec> for ProcessSpec {
    fn from(v: pb::ProcessSpec) -> Self {
        ProcessSpec {
            argv: v.argv,
            env: v.env,
        }
    }
}

impl From<&AppDescription> for pb::AppDescription {
    fn from(v: &AppDescription) -> Self {
        pb::AppDescription {
            name: v.name.clone(),
            cores_per_executor: v.cores_per_executor,
            memory_per_executor_mb: v.memory_per_executor_mb,
            max_cores: v.max_cores,
            initial_executor_limit: v.initial_executor_limit,
            command: Some((&v.command).into()),
            user: v.user().unwrap_or_default().to_owned(),
        }
    }
}

impl TryFrom<pb::AppDescription> for AppDescription {
    type Error = ConvertError;
    fn try_from(v: pb::AppDescription) -> Result<Self, ConvertError> {
        Ok(AppDescription {
            name: v.name,
            cores_per_executor: v.cores_per_executor,
            memory_per_executor_mb: v.memory_per_executor_mb,
            max_cores: v.max_cores,
            initial_executor_limit: v.initial_executor_limit,
            command: {
                let mut command: ProcessSpec =
                    required("AppDescription.command", v.command)?.into();
                // The `user` field wins over an env value of the same name.
                if !v.user.is_empty() {
                    command.env.insert(hearth_core::USER_ENV.to_owned(), v.user);
                }
                command
            },
        })
    }
}

impl From<&DriverDescription> for pb::DriverDescription {
    fn from(v: &DriverDescription) -> Self {
        pb::DriverDescription {
            cores: v.cores,
            memory_mb: v.memory_mb,
            supervise: v.supervise,
            command: Some((&v.command).into()),
        }
    }
}

impl TryFrom<pb::DriverDescription> for DriverDescription {
    type Error = ConvertError;
    fn try_from(v: pb::DriverDescription) -> Result<Self, ConvertError> {
        Ok(DriverDescription {
            cores: v.cores,
            memory_mb: v.memory_mb,
            supervise: v.supervise,
            command: required("DriverDescription.command", v.command)?.into(),
        })
    }
}

encode_owned!(
    ProcessSpec => pb::ProcessSpec,
    AppDescription => pb::AppDescription,
    DriverDescription => pb::DriverDescription,
);
