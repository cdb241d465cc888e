// Package txn is the Kafka transaction coordinator as a pure state
// machine.
//
// Machine holds every transactional id: its producer id and epoch, the
// previous ones (KIP-360), its timeout and state, and the partitions and
// consumer groups of the transaction under way. It is fed the
// coordinator's inputs (InitProducerID, AddPartitions, AddOffsets, EndTxn,
// MarkersWritten, Tick, Load) together with the current time, and never
// touches a clock, a disk or the network. Each input returns its answer
// and the actions its owner must carry out, as data (etcd raft's Ready):
//
//   - Persist: __transaction_state records, written durably before the
//     request is answered;
//   - Markers: commit or abort control batches to write to partitions;
//   - Offsets: consumer groups whose transactional offsets become visible
//     or are dropped.
//
// Once a transaction's markers and offsets are durable the owner reports
// MarkersWritten and persists the completion it returns. After a restart
// Load replays the records and returns the markers of every transaction
// that was prepared but not completed, to be written again (markers are
// idempotent for the log: a second marker for the same producer and epoch
// is harmless). Producer ids come from a ProducerIDs the owner passes in.
//
// The machine applies an input's change at once; its owner must not
// answer before the records are durable, and if an append fails it must
// drop the machine and Load a new one from the Store (crash-only), since
// the machine already holds the change the log lost.
//
// The machine is not safe for concurrent use. It must not import broker,
// kafka, server or franz-go; the Store it declares is implemented by the
// Kafka adapter in Kafka's own __transaction_state format. The package
// imports only the metrics leaf: the Service (never the Machine) counts
// outcomes from the records it persists and reads the open transactions
// from the machine at each tick (metrics.go).
//
// # Service: the owner loop
//
// Service owns a Machine on one goroutine (as group.Service does): each
// request runs on it with the current time, a ticker applies Tick, and
// the records an input returns are appended to the Store on that
// goroutine, so the log holds them in the machine's order. Helper
// goroutines wait until they are durable and only then answer the
// caller. Once PrepareCommit or PrepareAbort is durable the outcome is
// decided, as in Kafka; the markers (through Markers) and offset outcomes
// (through Offsets, the group coordinator) are then written, retried with
// a capped backoff until they succeed, and MarkersWritten's completion
// record is persisted; meanwhile the machine answers the id's requests
// with ErrConcurrentTransactions. EndTxn waits for that completion (at
// most ServiceOptions.SettleWait) before it answers, unlike Kafka, so a
// producer committing back to back does not back off (settle.go).
//
// Recovery is crash-only: when an append or its durability fails, the
// caller gets ErrCoordinatorNotAvailable, the machine is dropped before
// the next input, a new one is loaded from the Store and the markers of
// its prepared transactions are written again; completions of the old
// machine are abandoned. NewService starts the same way. Close stops the
// loop and answers waiting callers with ErrStopped.
//
// # States (Kafka's TransactionState)
//
//	       InitProducerId                          InitProducerId (epoch+1)
//	(new) ────────────────► Empty ◄──────────────────────────────────────────┐
//	                          │                                               │
//	                          │ AddPartitions, AddOffsets                     │
//	                          ▼                                               │
//	                       Ongoing ◄──────── AddPartitions, AddOffsets ───────┤
//	                       │  │  │                                            │
//	     EndTxn(commit) ◄──┘  │  └──► EndTxn(abort)                           │
//	          │               │            │                                  │
//	          ▼               │            ▼                                  │
//	    PrepareCommit         │       PrepareAbort ◄─── abort (epoch+1) ──┐   │
//	          │ markers       │            │ markers                      │   │
//	          ▼               │            ▼                              │   │
//	    CompleteCommit        │       CompleteAbort                       │   │
//	          └───────────────┼────────────┴──────────────────────────────┼───┘
//	                          │                                           │
//	                          └─ InitProducerId, timeout ─► PrepareEpochFence
//	                                                       (transient, never persisted)
//
//	 Empty, CompleteCommit, CompleteAbort ── idle for transactional.id.expiration ──► Dead (tombstone, removed)
//
// Requests that find a transaction in PrepareCommit or PrepareAbort are
// answered ErrConcurrentTransactions (the client retries); an EndTxn that
// repeats the one that completed succeeds again.
package txn
