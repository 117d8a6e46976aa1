package worker

import "github.com/logicspike/comms/pkg/message"

// inboxProvider is the provider an in_app message records: comms itself.
const inboxProvider = "inbox"

// toInbox is the outcome of an in_app message's attempt: it needs no provider, and is sent once
// it is in its recipient's inbox, which its row already is (docs/inbox.md).
func toInbox(out outcome) outcome {
	out.Status, out.ProviderType = message.Sent, inboxProvider
	return out
}
