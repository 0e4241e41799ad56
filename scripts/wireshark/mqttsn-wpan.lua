-- mqttsn-wpan.lua: dissect raw MQTT-SN carried directly in IEEE 802.15.4
-- frame payloads (no IP), on a PAN that also carries 6LoWPAN.
--
-- The rule it relies on: RFC 4944 §5.1 reserves the first payload bytes
-- 00xxxxxx (0x00-0x3F, "NALP": not a LoWPAN frame) for other protocols. A
-- raw MQTT-SN message therefore starts with a byte in 0x00-0x3F: messages
-- of up to 63 octets use the 1-octet Length field, longer ones the 3-octet
-- form (0x01, then a 16-bit length; MQTT-SN 1.2 §5.2.1), which qossim's
-- codec writes with `proto::mqttsn::codec::nalp_form`.
--
-- What it does: it registers a small protocol, mqttsn_wpan, in the
-- wpan.panid table for PAN 0x1234 (the PAN of every qossim radio
-- capture). A frame payload on that PAN whose first byte is 0x00-0x3F goes
-- to Wireshark's own MQTT-SN dissector, so it shows as
-- wpan:mqttsn_wpan:mqttsn. Any other payload is declined, so Wireshark
-- dissects it exactly as it would without this script (6LoWPAN frames stay
-- wpan:6lowpan:ipv6:udp...). A capture mixing both decodes both.
--
-- Use (checked with TShark 4.0.17):
--
--   tshark -X lua_script:scripts/wireshark/mqttsn-wpan.lua \
--          -d udp.port==1883,mqttsn -r capture.pcap
--
-- Why the -d: Wireshark 4.0 does not register its MQTT-SN dissector under
-- a name (Dissector.get("mqttsn") returns nothing) and offers it only for
-- "Decode As" on udp.port. The -d option puts it in the udp.port table,
-- where this script finds it (at the port of the mqttsn_wpan.udp_port
-- preference, 1883 by default). A Wireshark that does name the dissector
-- needs no -d; the script tries the name first. Without either, MQTT-SN
-- frames carry an error-level expert info saying so.
--
-- And why not just -d wpan.panid==0x1234,mqttsn: TShark 4.0 refuses it
-- ("Protocol "mqttsn" isn't valid for layer type "wpan.panid"", the only
-- choices being 6lowpan, data, lwm, zbee_nwk and zbee_nwk_gp), and it would
-- hand the 6LoWPAN frames to MQTT-SN as well.
--
-- Preferences: -o mqttsn_wpan.pan:N selects another PAN ID (in decimal:
-- 4660 is 0x1234; TShark rejects 0x... here), -o mqttsn_wpan.udp_port:N
-- the port named in -d.
--
-- In the Wireshark GUI: copy this file into the personal Lua plugins
-- folder (Help > About Wireshark > Folders) and add the Decode As entry
-- "UDP port 1883 -> MQTT-SN" once.

local p = Proto("mqttsn_wpan", "MQTT-SN in raw IEEE 802.15.4 payloads (NALP)")

p.prefs.pan = Pref.uint("PAN ID", 0x1234, "PAN whose NALP payloads are MQTT-SN")
p.prefs.udp_port = Pref.uint("MQTT-SN UDP port", 1883,
    "Port at which the MQTT-SN dissector is set up for Decode As (-d udp.port==N,mqttsn)")

local no_mqttsn = ProtoExpert.new("mqttsn_wpan.no_mqttsn",
    "MQTT-SN dissector not found: add -d udp.port==1883,mqttsn (or the mqttsn_wpan.udp_port in use)",
    expert.group.UNDECODED, expert.severity.ERROR)
p.experts = { no_mqttsn }

-- Last byte of the NALP range (RFC 4944 §5.1: 00xxxxxx).
local NALP_MAX = 0x3F

-- The MQTT-SN dissector, looked up at the first frame (after -d has been
-- applied); reset when the preferences change.
local mqttsn

local function find_mqttsn()
    local ok, d = pcall(Dissector.get, "mqttsn")
    if ok and d then
        return d
    end
    return DissectorTable.get("udp.port"):get_dissector(p.prefs.udp_port)
end

function p.dissector(tvb, pinfo, tree)
    if tvb:len() == 0 or tvb(0, 1):uint() > NALP_MAX then
        return 0
    end
    mqttsn = mqttsn or find_mqttsn()
    if not mqttsn then
        tree:add(p, tvb()):add_proto_expert_info(no_mqttsn)
        return tvb:len()
    end
    return mqttsn:call(tvb, pinfo, tree)
end

local registered_pan

local function register()
    local t = DissectorTable.get("wpan.panid")
    if registered_pan then
        t:remove(registered_pan, p)
    end
    registered_pan = p.prefs.pan
    t:add(registered_pan, p)
end

function p.prefs_changed()
    register()
    mqttsn = nil
end

register()
