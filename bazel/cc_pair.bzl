"""cc_pair: the one C++ library a .h/.cc pair makes, as the style guide asks (one target per pair)."""

def cc_pair(name, deps = [], **kwargs):
    """A cc_library of `name`.h and `name`.cc in this package.

    Args:
      name: the pair's base name, which is also the target's.
      deps: what the pair includes.
      **kwargs: any other cc_library attribute (visibility, linkopts, ...).
    """
    native.cc_library(
        name = name,
        srcs = [name + ".cc"],
        hdrs = [name + ".h"],
        deps = deps,
        **kwargs
    )
