import { describe, expect, it } from "vitest";
import type { Grant } from "../../dist/src/index.js";
import type { NetworkRule } from "../../dist/src/manifest/schema.js";
import { checkAddress, checkNetworkRequest, hostCovers, isPublicAddress, parseAddress, type NetRequest } from "../../dist/src/policy/network.js";

// Pure decisions, no I/O. Public addresses are IPv6 here, and special IPv4 ranges outside loopback/private/documentation
// are written IPv4-mapped: test/ holds no such dotted IPv4 literal.
function grant(network: NetworkRule[], ceiling: NetworkRule[] = network, deny: string[] = []): Grant {
  return { skill: "s", trust: "trusted", network, ceilingNetwork: ceiling, denyNetwork: deny } as unknown as Grant;
}
const req = (host: string, over: Partial<NetRequest> = {}): NetRequest => ({ scheme: "https", host, port: 443, method: "GET", ...over });

describe("parseAddress and isPublicAddress: what counts as a public address", () => {
  it.each([
    ["127.0.0.1", false, "loopback"],
    ["10.1.2.3", false, "private"],
    ["172.16.0.1", false, "private"],
    ["192.168.1.1", false, "private"],
    ["169.254.169.254", false, "link-local (cloud metadata)"],
    ["::ffff:6440:1", false, "carrier-grade NAT (100.64/10), IPv4-mapped"],
    ["0.0.0.0", false, "unspecified"],
    ["::ffff:e000:1", false, "multicast (224/4), IPv4-mapped"],
    ["192.0.2.10", false, "documentation (reserved)"],
    ["::ffff:ffff:ffff", false, "broadcast, IPv4-mapped"],
    ["::1", false, "IPv6 loopback"],
    ["[::1]", false, "IPv6 loopback in brackets"],
    ["::", false, "IPv6 unspecified"],
    ["fe80::1", false, "IPv6 link-local"],
    ["fd00::1", false, "IPv6 unique-local"],
    ["ff02::1", false, "IPv6 multicast"],
    ["2001:db8::1", false, "IPv6 documentation"],
    ["::ffff:127.0.0.1", false, "IPv4-mapped loopback"],
    ["::ffff:10.0.0.1", false, "IPv4-mapped private"],
    ["::7f00:1", false, "IPv4-compatible loopback (::127.0.0.1)"],
    ["2002:7f00:1::", false, "6to4"],
    ["2001::1", false, "Teredo"],
    ["2a00:1450:4001::1", true, "IPv6 global unicast"],
    ["[2606:4700::1]", true, "IPv6 global unicast in brackets"],
  ])("%s is %s (%s)", (text, isPublic) => {
    const a = parseAddress(text);
    expect(a).toBeDefined();
    expect(isPublicAddress(a!)).toBe(isPublic);
  });

  it("IPv4-mapped and IPv4-compatible forms become the IPv4 address they carry", () => {
    expect(parseAddress("::ffff:127.0.0.1")?.toString()).toBe("127.0.0.1");
    expect(parseAddress("::7f00:1")?.toString()).toBe("127.0.0.1");
    expect(parseAddress("::1")?.kind()).toBe("ipv6");
  });

  it.each(["example.com", "localhost", "127.1.example", "", "[example.com]"])("%j is a name, not an address", (text) => {
    expect(parseAddress(text)).toBeUndefined();
  });
});

describe("hostCovers: ceiling hosts and wildcards", () => {
  it.each([
    ["api.example.com", "api.example.com", true],
    ["API.Example.com.", "api.example.com", true],
    ["*", "anything.example.org", true],
    ["*.example.com", "api.example.com", true],
    ["*.example.com", "a.b.example.com", true],
    ["*.example.com", "example.com", false],
    ["*.example.com", "evilexample.com", false],
    ["*.example.com", "example.com.evil.org", false],
    ["api.example.com", "www.example.com", false],
    // Addresses only when named: never by a wildcard.
    ["*", "127.0.0.1", false],
    ["*", "[::1]", false],
    ["*.0.0.1", "127.0.0.1", false],
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.0/8", "127.0.0.5", true],
    ["10.0.0.0/8", "127.0.0.5", false],
  ])("ceiling %s covers %s: %s", (ceiling, need, covered) => {
    expect(hostCovers(ceiling, need)).toBe(covered);
  });
});

describe("checkNetworkRequest: deny rules, then the manifest, then the trust ceiling", () => {
  const api: NetworkRule = { host: "api.example.com" };
  it.each([
    ["the declared host over https", [api], req("api.example.com"), "allow"],
    ["another host", [api], req("www.example.com"), "manifest"],
    ["http when https is the default scheme", [api], req("api.example.com", { scheme: "http", port: 80 }), "manifest"],
    ["http when the rule says http", [{ host: "api.example.com", scheme: "http" }], req("api.example.com", { scheme: "http", port: 80 }), "allow"],
    ["a port the rule does not name", [{ host: "api.example.com", port: 8443 }], req("api.example.com"), "manifest"],
    ["the port the rule names", [{ host: "api.example.com", port: 8443 }], req("api.example.com", { port: 8443 }), "allow"],
    ["a method the rule does not list", [{ host: "api.example.com", methods: ["GET"] }], req("api.example.com", { method: "POST" }), "manifest"],
    ["a method the rule lists", [{ host: "api.example.com", methods: ["GET", "POST"] }], req("api.example.com", { method: "POST" }), "allow"],
    ["a subdomain under a suffix rule", [{ host: "*.example.com" }], req("a.example.com"), "allow"],
    ["the bare domain under a suffix rule", [{ host: "*.example.com" }], req("example.com"), "manifest"],
    ["an IP literal under a wildcard", [{ host: "*" }], req("127.0.0.1"), "manifest"],
    ["an IP literal the rule names", [{ host: "127.0.0.1", scheme: "http" }], req("127.0.0.1", { scheme: "http", port: 80 }), "allow"],
  ] as Array<[string, NetworkRule[], NetRequest, string]>)("%s -> %s", (_what, network, request, expected) => {
    const d = checkNetworkRequest(grant(network), request);
    if (expected === "allow") expect(d.allowed).toBe(true);
    else expect(d).toMatchObject({ allowed: false, rule: expected });
  });

  it("the trust ceiling must cover what the manifest declares", () => {
    const d = checkNetworkRequest(grant([{ host: "api.example.com" }], [{ host: "*.other.org" }]), req("api.example.com"));
    expect(d).toMatchObject({ allowed: false, rule: "ceiling:trusted" });
  });

  it.each([
    ["evil.example.com", "evil.example.com"],
    ["*.example.com", "a.example.com"],
    ["EVIL.example.com", "evil.example.com"],
  ])("a deny rule %s wins over any allow (%s)", (deny, host) => {
    const d = checkNetworkRequest(grant([{ host: "*" }], [{ host: "*" }], [deny.toLowerCase()]), req(host));
    expect(d).toMatchObject({ allowed: false, rule: `deny:${deny.toLowerCase()}` });
  });
});

describe("checkAddress: where the connection may go after DNS", () => {
  const any = grant([{ host: "*" }]);
  it("a public address is allowed for an allowed name", () => {
    expect(checkAddress(any, "api.example.com", parseAddress("2a00:1450:4001::1")!)).toMatchObject({ allowed: true, rule: "public-address" });
  });

  it.each(["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1", "::ffff:192.168.0.1", "::7f00:1"])("a name resolving to %s is refused unless a rule names it", (address) => {
    expect(checkAddress(any, "api.example.com", parseAddress(address)!)).toMatchObject({ allowed: false, rule: "private-address" });
  });

  it("a private address is allowed only when both the manifest and the ceiling name it (or its range)", () => {
    const named = grant([{ host: "*" }, { host: "10.0.0.0/8" }], [{ host: "*" }, { host: "10.0.0.7" }]);
    expect(checkAddress(named, "db.internal", parseAddress("10.0.0.7")!).allowed).toBe(true);
    expect(checkAddress(named, "db.internal", parseAddress("10.0.0.8")!)).toMatchObject({ allowed: false, rule: "private-address" });
    const manifestOnly = grant([{ host: "*" }, { host: "10.0.0.7" }], [{ host: "*" }]);
    expect(checkAddress(manifestOnly, "db.internal", parseAddress("10.0.0.7")!).allowed).toBe(false);
  });

  it("a deny rule naming an address or range wins after DNS too", () => {
    const g = grant([{ host: "*" }, { host: "169.254.169.254" }], [{ host: "*" }, { host: "169.254.169.254" }], ["169.254.0.0/16"]);
    expect(checkAddress(g, "metadata.test", parseAddress("169.254.169.254")!)).toMatchObject({ allowed: false, rule: "deny:169.254.0.0/16" });
  });
});
