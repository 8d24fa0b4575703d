"""Cell-based CNN building blocks: the candidate ops of a DAG cell, the cell, a residual reduction.

These follow NAS-Bench-201 (Dong & Yang, ICLR 2020): every op keeps the shape of
its input, so any op can sit on any edge of a cell, and a network is a stack of
cells separated by residual blocks that halve the resolution and change the width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU, k x k conv without bias (the BatchNorm after it makes one redundant), BatchNorm.

    Activating first means a sum of such ops at a node stays un-activated, as in
    the NB201 cell.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape, so the edge carries nothing (not even NaNs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


#: the NB201 candidate ops by name, each a factory of ``channels``
CELL_OPS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: Zero(),
    "skip_connect": lambda c: nn.Identity(),
    "nor_conv_1x1": lambda c: ReLUConvBN(c, c, 1),
    "nor_conv_3x3": lambda c: ReLUConvBN(c, c, 3),
    "avg_pool_3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


class Cell(nn.Module):
    """A densely connected DAG cell: node 0 is the input, node j sums op_(j,i)(node i) over i < j.

    ``ops`` names one op of ``CELL_OPS`` per edge, ordered by target node then
    source node ((1,0), (2,0), (2,1), (3,0), ...); its length fixes the number of
    nodes. The last node is the output.
    """

    def __init__(self, ops: Sequence[str], channels: int):
        super().__init__()
        self.nodes = round((1 + (1 + 8 * len(ops)) ** 0.5) / 2)
        if self.nodes * (self.nodes - 1) // 2 != len(ops):
            raise ValueError(f"{len(ops)} edge ops do not fill a densely connected cell")
        self.edges = nn.ModuleList(CELL_OPS[op](channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for j in range(1, self.nodes):
            nodes.append(sum(self.edges[edge + i](nodes[i]) for i in range(j)))
            edge += j
        return nodes[-1]


class ResidualReduction(nn.Module):
    """ResNet basic block that halves the resolution and changes the width between stages.

    Main path: ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN. Shortcut: 2x2 average
    pooling (stride 2), then a 1x1 conv to the new width; the two are added.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
