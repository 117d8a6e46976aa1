package store

import "time"

// WeekTable is the table a statement of a batch of messages made at times runs on (inWeek).
func WeekTable(table string, times ...time.Time) string { return weekTable(table, times) }
