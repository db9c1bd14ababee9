"""Two workers move items between two shared buffers, each taking the locks in its own order:
they deadlock (each holds the lock the other waits for)."""

import threading
import time

inbox_lock = threading.Lock()
outbox_lock = threading.Lock()
inbox, outbox = list(range(100)), []


def drain_inbox():
    with inbox_lock:
        item = inbox.pop()
        time.sleep(0.2)  # some work while holding the inbox
        with outbox_lock:
            outbox.append(item)


def refill_inbox():
    with outbox_lock:
        time.sleep(0.2)
        with inbox_lock:
            inbox.extend(outbox)
            outbox.clear()


if __name__ == "__main__":
    workers = [threading.Thread(target=drain_inbox), threading.Thread(target=refill_inbox)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("done")
