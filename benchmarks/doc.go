// Package benchmarks holds no code: its tests measure the numbers in
// BENCHMARKS.md at the repository root, every row in one run.
package benchmarks
