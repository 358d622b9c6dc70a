package edge

import (
	"net/url"
	"strconv"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// parseConnQuery reads the device id and the since position of a connection
// request's query. A bad device id is 400 invalid_device; a since that is
// not a non-negative integer (or is given twice with different values) is
// 400 invalid_request. The error is an *herald.Error.
func parseConnQuery(q url.Values) (device string, pos Position, err error) {
	device = q.Get("device")
	if err := streams.ValidateDevice(device); err != nil {
		return "", Position{}, herald.WrapError(herald.InvalidDevice, err, err.Error())
	}
	if len(q["device"]) > 1 {
		return "", Position{}, herald.NewError(herald.InvalidDevice, "device is given more than once")
	}
	if v, ok := q["since"]; ok && (len(v) > 1 || v[0] != "") { // since= alone: no position
		if len(v) > 1 {
			return "", Position{}, herald.NewError(herald.InvalidRequest, "since is given more than once")
		}
		n, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			return "", Position{}, herald.WrapError(herald.InvalidRequest, err, "since must be a non-negative integer")
		}
		pos = Position{Since: n, HasSince: true}
	}
	return device, pos, nil
}
