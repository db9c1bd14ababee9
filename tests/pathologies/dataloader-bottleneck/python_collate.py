"""Variable-length sequences padded in a hand-written collate_fn, element by element."""

import torch
from torch import nn
from torch.utils.data import DataLoader

torch.set_num_threads(1)

sequences = [[(i * 7 + j) % 50 for j in range(200 + i % 200)] for i in range(512)]
labels = [i % 2 for i in range(512)]


def pad_collate(batch):
    longest = max(len(seq) for seq, _ in batch)
    rows = []
    for seq, _ in batch:
        row = []
        for position in range(longest):
            row.append(seq[position] / 50.0 if position < len(seq) else 0.0)
        rows.append(row)
    return torch.tensor(rows), torch.tensor([label for _, label in batch])


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 2)

    def forward(self, x):
        return self.head(x.mean(dim=1, keepdim=True))


model = Bag()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loader = DataLoader(list(zip(sequences, labels)), batch_size=32, shuffle=True,
                    collate_fn=pad_collate)
for _epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
print("done")
