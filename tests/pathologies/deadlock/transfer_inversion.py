"""Bank-style transfers with one lock per account, locking source then destination: a transfer
a->b in one thread and b->a in another can deadlock. This run does them at different moments,
so it finishes, but the lock order is inverted."""

import threading
import time


class Account:
    def __init__(self, balance):
        self.balance = balance
        self.lock = threading.Lock()


def transfer(source, destination, amount):
    with source.lock:
        with destination.lock:
            source.balance -= amount
            destination.balance += amount


def pay_rent(tenant, landlord, rounds):
    for _ in range(rounds):
        transfer(tenant, landlord, 10)
        time.sleep(0.001)


if __name__ == "__main__":
    alice, bob = Account(1000), Account(1000)
    first = threading.Thread(target=pay_rent, args=(alice, bob, 50))
    first.start()
    first.join()
    second = threading.Thread(target=pay_rent, args=(bob, alice, 50))
    second.start()
    second.join()
    print(alice.balance, bob.balance)
