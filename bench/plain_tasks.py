"""The raw-RQ side of the benchmarks: a plain function in a module that imports nothing of ours."""


def plain_noop(x):
    return x
