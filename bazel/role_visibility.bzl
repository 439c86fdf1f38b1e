"""role_visibility: who may see a role's targets (issue 9's role isolation), spelled once."""

def role_visibility(role, subpackages = True, binary = False):
    """The role's own package(s) and tests, and the end-to-end tests that start its binary.

    Args:
      role: the role's package, e.g. "mnt".
      subpackages: whether the role's subpackages (and its tests') may see it too; False for
        the PAN, whose subpackage pan/broker is the broker, another role.
      binary: for the role's binary, which the tests that build the container image also see.

    Returns:
      A visibility list for package(default_visibility = ...) or a target's visibility.
    """
    scope = ":__subpackages__" if subpackages else ":__pkg__"
    visibility = [
        "//%s%s" % (role, scope),
        "//tests/%s%s" % (role, scope),
        "//tests/e2e:__subpackages__",
    ]
    if binary:
        visibility.append("//tests/deploy:__pkg__")
    return sorted(visibility)
