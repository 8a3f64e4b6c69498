//! The gRPC adapter: `TrainerService` over [`Runs`]. It unwraps requests, calls the core and
//! turns a [`RunError`] into a `tonic::Status` — [`code`] is the only place the trainer
//! chooses a status code.

use crate::runs::{RunError, Runs};
use proto::v1::trainer_service_server::TrainerService;
use proto::v1::{GetRunRequest, Run, TrainRequest, TrainResponse};
use tonic::{Code, Request, Response, Status};

/// The one mapping from run errors to gRPC codes.
fn code(error: &RunError) -> Code {
    match error {
        RunError::InvalidAlias(_) | RunError::Trigger => Code::InvalidArgument,
        RunError::NotFound { .. } => Code::NotFound,
        RunError::Poisoned => Code::Internal,
    }
}

impl From<RunError> for Status {
    fn from(error: RunError) -> Status {
        Status::new(code(&error), error.to_string())
    }
}

/// The gRPC face of [`Runs`].
pub(crate) struct Grpc(pub(crate) Runs);

#[tonic::async_trait]
impl TrainerService for Grpc {
    async fn train(
        &self,
        request: Request<TrainRequest>,
    ) -> Result<Response<TrainResponse>, Status> {
        Ok(Response::new(self.0.start(request.into_inner())?))
    }

    async fn get_run(&self, request: Request<GetRunRequest>) -> Result<Response<Run>, Status> {
        let id = request.into_inner().run_id;
        Ok(Response::new(self.0.get(&id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_code_and_keeps_its_message() {
        let bad_name = || registry::check_name("..").unwrap_err();
        let cases = vec![
            (
                RunError::InvalidAlias(bad_name()),
                Code::InvalidArgument,
                format!("invalid field `promote_to`: {}", bad_name()),
            ),
            (
                RunError::NotFound {
                    run_id: "r1".into(),
                },
                Code::NotFound,
                "no run r1".into(),
            ),
            (
                RunError::Poisoned,
                Code::Internal,
                "run table poisoned".into(),
            ),
            (
                RunError::Trigger,
                Code::InvalidArgument,
                "invalid field `trigger`: at most 1000 characters".into(),
            ),
        ];
        // No wildcard: a new variant does not compile until it has a case here.
        let mut covered = [false; 4];
        for (error, expected, message) in cases {
            covered[match &error {
                RunError::InvalidAlias(_) => 0,
                RunError::NotFound { .. } => 1,
                RunError::Poisoned => 2,
                RunError::Trigger => 3,
            }] = true;
            let debug = format!("{error:?}");
            let status = Status::from(error);
            assert_eq!(status.code(), expected, "{debug}");
            assert_eq!(status.message(), message, "{debug}");
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }
}
