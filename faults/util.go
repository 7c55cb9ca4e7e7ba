package faults

import "time"

// requestTimeout bounds one HTTP request. It is above the shard's 5 s apply timeout, so a
// healthy but slow cluster answers rather than times out.
const requestTimeout = 7 * time.Second
