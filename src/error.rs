//! Crate errors and the one place they map to Kafka error codes.

use kafka_protocol::ResponseError;
use thiserror::Error;

/// Why a topic-level operation (create, delete, add partitions, describe) failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    PolicyViolation(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("Topic deletion is disabled.")]
    DeletionDisabled,
    #[error("storage error: {0}")]
    Storage(String),
}

impl TopicError {
    /// The Kafka error for this failure.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::InvalidRequest(_) => ResponseError::InvalidRequest,
            TopicError::PolicyViolation(_) => ResponseError::PolicyViolation,
            TopicError::UnknownTopic => ResponseError::UnknownTopicOrPartition,
            TopicError::UnknownTopicId => ResponseError::UnknownTopicId,
            TopicError::DeletionDisabled => ResponseError::TopicDeletionDisabled,
            TopicError::Storage(_) => ResponseError::UnknownServerError,
        }
    }

    /// The error message to send: Kafka sends none (null) for unknown topics, and the client
    /// shows its own text.
    pub fn wire_message(&self) -> Option<String> {
        match self {
            TopicError::UnknownTopic | TopicError::UnknownTopicId => None,
            other => Some(other.to_string()),
        }
    }

    /// The Kafka error code for this failure.
    pub fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}

use crate::log::batch::BatchError;
use crate::log::LogError;

impl LogError {
    /// The Kafka error for a failed log operation.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            LogError::Batch(BatchError::Corrupt(_)) => ResponseError::CorruptMessage,
            LogError::Batch(BatchError::Invalid(_)) => ResponseError::InvalidRecord,
            LogError::Batch(BatchError::UnsupportedMagic(_)) => ResponseError::UnsupportedForMessageFormat,
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::Storage(_) => ResponseError::KafkaStorageError,
            LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
            LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
            LogError::TransactionCoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced,
        }
    }
}

use crate::group::GroupError;

impl GroupError {
    /// The Kafka error for a failed group operation.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            GroupError::Storage(_) => ResponseError::UnknownServerError,
        }
    }

    pub fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}

use crate::txn::TxnError;

impl TxnError {
    /// The Kafka error for a failed transaction operation, for a request version that knows
    /// PRODUCER_FENCED (KIP-588); older versions get INVALID_PRODUCER_EPOCH instead (see `api::txn`).
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
            TxnError::TransactionAbortable => ResponseError::TransactionAbortable,
            TxnError::Storage(_) => ResponseError::UnknownServerError,
        }
    }
}

/// Kafka's default message of an error (`Errors.message()` in Kafka's `Errors` enum), for the
/// answers whose error message Kafka fills with it. `None` for the errors no answer needs yet.
pub fn default_message(e: kafka_protocol::ResponseError) -> Option<&'static str> {
    use kafka_protocol::ResponseError as E;
    Some(match e {
        E::UnknownTopicOrPartition => "This server does not host this topic-partition.",
        E::UnknownTopicId => "This server does not host this topic ID.",
        E::CoordinatorNotAvailable => "The coordinator is not available.",
        E::InvalidRequest => {
            "This most likely occurs because of a request being malformed by the client library or the \
             message was sent to an incompatible broker. See the broker logs for more details."
        }
        _ => return None,
    })
}
