// Package group is the classic Kafka consumer-group coordinator as a pure
// state machine, plus the one goroutine that drives it.
//
// Machine holds every group: members, generations, the chosen protocol,
// assignments and committed offsets. It is fed events (join, sync,
// heartbeat, leave, commit, …) together with the current time, and never
// touches a clock, a disk or the network: replies that must wait (a
// JoinGroup until the rebalance completes, a SyncGroup until the leader's
// assignment arrives) are stored as callbacks and called by a later event;
// timers are deadlines that Tick(now) checks. Scripted tests drive it
// directly with a fake clock.
//
// Service owns a Machine on one goroutine, posts requests to it, fires
// Tick at the next deadline and persists what the machine asks to persist
// through a Store, declared here and implemented by the Kafka adapter on
// top of the __consumer_offsets topic. A commit is acknowledged only once
// the Store reports it durable.
//
// Group metadata (subscriptions, assignments) stays opaque bytes: group
// must not import broker, kafka, server or franz-go.
//
// # State transitions (Kafka's classic protocol)
//
//	          join (first member)             all members rejoined or
//	Empty ─────────────────────► Preparing ───── rebalance timeout ─────► Completing
//	  ▲                          Rebalance ◄──── join/leave/expiry ────── Rebalance
//	  │ last member leaves           ▲                                      │ leader's SyncGroup
//	  │ or expires                   └──────── join/leave/expiry ─────── Stable ◄┘
//	  └─────────────────────────────────────────────────────────────────────┘
package group
