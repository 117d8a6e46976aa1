// Package all registers every provider adapter: a program that imports it (for its side
// effect) can build, and receive callbacks from, every provider type. Adding a provider adds
// its import here.
package all

import (
	_ "github.com/logicspike/comms/pkg/provider/apns"
	_ "github.com/logicspike/comms/pkg/provider/fcm"
	_ "github.com/logicspike/comms/pkg/provider/resend"
	_ "github.com/logicspike/comms/pkg/provider/sandbox"
	_ "github.com/logicspike/comms/pkg/provider/ses"
	_ "github.com/logicspike/comms/pkg/provider/smtp"
	_ "github.com/logicspike/comms/pkg/provider/twilio"
	_ "github.com/logicspike/comms/pkg/provider/webhook"
	_ "github.com/logicspike/comms/pkg/provider/webpush"
)
