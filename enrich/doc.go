// Package enrich looks up what a report needs to know about an address:
// reverse DNS names, the originating AS, geolocation and the network's abuse
// contact.
package enrich
