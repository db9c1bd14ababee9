"""Control: the dataset and the class weights go to the device once; each fresh batch is
moved as it comes from the DataLoader."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
class_weights = torch.tensor([1.0, 2.0, 0.5, 1.5]).to(device)
loader = DataLoader(TensorDataset(torch.randn(2048, 16), torch.randint(0, 4, (2048,))),
                    batch_size=64, shuffle=True, pin_memory=device.type == "cuda")
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for _epoch in range(3):
    for xb, yb in loader:
        xb = xb.to(device, non_blocking=True)
        yb = yb.to(device, non_blocking=True)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb, weight=class_weights)
        loss.backward()
        optimizer.step()
print("done")
