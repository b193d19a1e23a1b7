use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Replica sizes, as in the reference system, so capacity plans carry over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum ReplicaSize {
    /// 0.125 vCPU, 512 MiB.
    #[default]
    XS,
    /// 0.25 vCPU, 1 GiB.
    S,
    /// 0.5 vCPU, 2 GiB.
    M,
    /// 1 vCPU, 4 GiB.
    L,
    /// 2 vCPU, 8 GiB.
    XL,
}

impl ReplicaSize {
    pub const ALL: [ReplicaSize; 5] = [Self::XS, Self::S, Self::M, Self::L, Self::XL];

    /// CPU in thousandths of a vCPU, so placement arithmetic stays integral.
    pub fn millicpu(self) -> u32 {
        match self {
            Self::XS => 125,
            Self::S => 250,
            Self::M => 500,
            Self::L => 1000,
            Self::XL => 2000,
        }
    }

    pub fn memory_mib(self) -> u64 {
        match self {
            Self::XS => 512,
            Self::S => 1024,
            Self::M => 2048,
            Self::L => 4096,
            Self::XL => 8192,
        }
    }

    /// A batch is flushed at 32 MB per GB of replica memory.
    pub fn max_batch_bytes(self) -> u64 {
        self.memory_mib() * 32 * 1024 * 1024 / 1024
    }

    /// Largest single Kafka message a replica accepts; larger ones are
    /// refused with an error record rather than dropped.
    pub fn max_kafka_message_bytes(self) -> u64 {
        if self == Self::XS {
            16 << 20
        } else {
            32 << 20
        }
    }

    pub fn max_kinesis_record_bytes(self) -> u64 {
        if self == Self::XS {
            8 << 20
        } else {
            16 << 20
        }
    }

    /// Concurrent Kinesis shard workers per replica; 4 on the smallest size.
    pub fn kinesis_shard_workers(self) -> u32 {
        match self {
            Self::XS => 4,
            Self::S => 8,
            Self::M => 16,
            Self::L => 32,
            Self::XL => 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow_monotonically() {
        for pair in ReplicaSize::ALL.windows(2) {
            assert!(pair[0].millicpu() < pair[1].millicpu());
            assert!(pair[0].memory_mib() < pair[1].memory_mib());
            assert!(pair[0].max_batch_bytes() < pair[1].max_batch_bytes());
            assert!(pair[0].kinesis_shard_workers() < pair[1].kinesis_shard_workers());
        }
    }

    #[test]
    fn batch_bytes_are_32mb_per_gb() {
        assert_eq!(ReplicaSize::XS.max_batch_bytes(), 16 << 20);
        assert_eq!(ReplicaSize::L.max_batch_bytes(), 128 << 20);
        assert_eq!(ReplicaSize::XS.kinesis_shard_workers(), 4);
    }
}
