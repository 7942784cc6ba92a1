//! The computation: a seeded PRNG and the Monte-Carlo count, shared by driver and executor.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, deterministic, good enough for Monte-Carlo.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    /// Uniform in [0, 1) from the top 53 bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn task_seed(id: u64) -> u64 {
    mix64(id ^ 0x6865_6172_7468_2d70) // "hearth-p"
}

pub(crate) fn count_inside(seed: u64, samples: u64) -> u64 {
    let mut rng = SplitMix64(seed);
    let mut inside = 0;
    for _ in 0..samples {
        let (x, y) = (rng.next_f64(), rng.next_f64());
        if x * x + y * y < 1.0 {
            inside += 1;
        }
    }
    inside
}

/// Callers guarantee `tasks * samples_per_task` fits in a u64 and is not zero.
pub(crate) fn result_line(inside: u64, tasks: u64, samples_per_task: u64) -> String {
    let samples = tasks * samples_per_task;
    let pi = 4.0 * inside as f64 / samples as f64;
    format!("pi={pi:.12} inside={inside} samples={samples} tasks={tasks}")
}

pub(crate) fn expected_line(tasks: u64, samples_per_task: u64) -> String {
    let inside = (0..tasks)
        .map(|id| count_inside(task_seed(id), samples_per_task))
        .sum();
    result_line(inside, tasks, samples_per_task)
}
