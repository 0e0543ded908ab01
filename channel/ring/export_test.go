package ring

// ParallelMemory is parallelMemory, for the tests of package ring_test.
const ParallelMemory = parallelMemory
