//go:build race

package main

// raceBuild: built with -race (see limitMemory).
const raceBuild = true
