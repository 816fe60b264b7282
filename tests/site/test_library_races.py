"""Deleting an album while a picture goes into it (a move, an upload, an encode finishing) or
while it is renamed, and deleting a picture while it is changed: one side waits for the other,
and the loser gets a clean answer ("No such album" / "No such picture", 404; a finishing
encode: its picture outside any album), never an IntegrityError or a DatabaseError (a 500), and
nothing deleted comes back; pictures joining an album at once get distinct positions. Threads
started at once on PostgreSQL, several rounds each."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from imagehost.models import Album, EncodeJob, JobStatus, Picture
from imagehost.services import jobs, library, uploads
from imagehost.services.errors import InvalidInput, NotFound

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 8


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("threads writing at once need PostgreSQL")


def race(*calls) -> list:
    """Run the calls at once, one thread each; their results, or the exceptions they raised."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_pictures_added_to_an_album_at_once_get_distinct_positions(user, make_picture):
    """Two pictures joining an album at the same moment (two uploads finishing, two moves) must
    not both take "the position after the last one"."""
    album = library.create_album(user, "Race")
    for round_ in range(5):
        pictures = [make_picture(user, title=f"p{round_}-{i}") for i in range(4)]
        moved = race(*(lambda p=p: library.move_picture_to_album(p, album) for p in pictures))
        assert all(isinstance(m, Picture) for m in moved), moved
        positions = list(album.pictures.values_list("position", flat=True))
        assert len(positions) == 4 * (round_ + 1) and len(set(positions)) == len(positions), sorted(positions)


def test_moving_a_picture_into_an_album_while_it_is_deleted(user, make_picture):
    for round_ in range(ROUNDS):
        album = library.create_album(user, f"Doomed {round_}")
        picture = make_picture(user, title=f"p{round_}")
        target, doomed = Album.objects.get(pk=album.pk), Album.objects.get(pk=album.pk)  # one per request
        moved, deleted = race(lambda: library.move_picture_to_album(picture, target), lambda: library.delete_album(doomed))
        assert deleted is None, deleted
        assert isinstance(moved, (Picture, NotFound)), moved
        assert Picture.objects.get(pk=picture.pk).album_id is None  # the album is gone either way
        assert not Album.objects.filter(pk=album.pk).exists()


def test_uploading_into_an_album_while_it_is_deleted(user, png_bytes):
    for round_ in range(ROUNDS):
        album = library.create_album(user, f"Doomed {round_}")
        data = png_bytes(32, 24, seed=round_)
        target, doomed = Album.objects.get(pk=album.pk), Album.objects.get(pk=album.pk)
        submitted, deleted = race(lambda: uploads.submit_upload(data, owner=user, album=target),
                                  lambda: library.delete_album(doomed))
        assert deleted is None, deleted
        assert isinstance(submitted, (EncodeJob, NotFound)), submitted
        assert not EncodeJob.objects.filter(album_id=album.pk).exists()


def test_an_encode_finishing_into_an_album_while_it_is_deleted(user, png_bytes):
    data = png_bytes(32, 24, seed=1)
    first = EncodeJob.objects.create(owner=user, source=data)
    result = jobs.encode(jobs.claim(first.pk))  # one real encode; every round completes with it
    for round_ in range(ROUNDS):
        album = library.create_album(user, f"Doomed {round_}")
        job = EncodeJob.objects.create(owner=user, album=album, source=data, status=JobStatus.RUNNING)
        completed, deleted = race(lambda: jobs.complete(job.pk, result), lambda: library.delete_album(album))
        assert deleted is None, deleted
        assert isinstance(completed, EncodeJob), completed
        job.refresh_from_db()
        assert job.status == JobStatus.DONE and job.picture is not None
        assert job.picture.album_id is None  # the picture stays in the library, outside any album


def test_a_finishing_encode_and_an_album_delete_do_not_deadlock(user, png_bytes, monkeypatch):
    """The exact interleaving: the encode's transaction holds its job row when the album's
    deletion starts (which must set that job's album to NULL). Were the album locked after the
    job, each would wait for the other (PostgreSQL then kills one: a failed delete or a retried
    encode)."""
    import time

    data = png_bytes(32, 24, seed=2)
    result = jobs.encode(jobs.claim(EncodeJob.objects.create(owner=user, source=data).pk))
    album = library.create_album(user, "Doomed")
    job = EncodeJob.objects.create(owner=user, album=album, source=data, status=JobStatus.RUNNING)
    job_held, real_locked = threading.Event(), jobs._locked

    def locked_then_slow(job_id):
        row = real_locked(job_id)
        job_held.set()
        time.sleep(0.5)  # the deletion starts meanwhile
        return row

    monkeypatch.setattr(jobs, "_locked", locked_then_slow)

    def delete_once_the_job_is_held():
        assert job_held.wait(30)
        return library.delete_album(Album.objects.get(pk=album.pk))

    completed, deleted = race(lambda: jobs.complete(job.pk, result), delete_once_the_job_is_held)
    assert isinstance(completed, EncodeJob) and deleted is None, (completed, deleted)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.picture.album_id is None and job.album_id is None


def test_renaming_an_album_while_it_is_deleted(user):
    """A rename that lost the race used to write the album back: deleted (204), yet there."""
    for round_ in range(ROUNDS):
        album = library.create_album(user, f"Doomed {round_}")
        target, doomed = Album.objects.get(pk=album.pk), Album.objects.get(pk=album.pk)
        renamed, deleted = race(lambda: library.update_album(target, title="Renamed", visibility="public"),
                                lambda: library.delete_album(doomed))
        assert deleted is None, deleted
        assert isinstance(renamed, (Album, NotFound)), renamed
        assert not Album.objects.filter(pk=album.pk).exists()


def test_changing_a_picture_while_it_is_deleted(user, make_picture):
    album = library.create_album(user, "Target")
    for round_ in range(ROUNDS):
        for change in (lambda p: library.update_picture(p, title="Renamed"),
                       lambda p: library.move_picture_to_album(p, Album.objects.get(pk=album.pk))):
            picture = make_picture(user, title=f"p{round_}")
            target, doomed = Picture.objects.get(pk=picture.pk), Picture.objects.get(pk=picture.pk)
            changed, deleted = race(lambda: change(target), lambda: library.delete_picture(doomed))
            assert isinstance(deleted, int), deleted
            assert isinstance(changed, (Picture, NotFound)), changed
            assert not Picture.objects.filter(pk=picture.pk).exists()


def test_changing_a_short_links_expiry_while_it_is_deleted(user, real_token):
    from imagehost.models import ShortLink
    from imagehost.services import links

    for round_ in range(ROUNDS):
        link = links.get_or_create_short_link(real_token, user, slug=f"race-{round_}")
        target, doomed = ShortLink.objects.get(pk=link.pk), ShortLink.objects.get(pk=link.pk)
        cleared, deleted = race(lambda: links.clear_expiry(target, owner=user),
                                lambda: links.delete_short_link(doomed, owner=user))
        assert deleted is None, deleted
        assert isinstance(cleared, (ShortLink, NotFound)), cleared
        assert not ShortLink.objects.filter(pk=link.pk).exists()


def test_reordering_an_album_while_a_picture_leaves_or_joins_it(user, make_picture):
    """Up/down reads the album's order and writes it back: a picture leaving meanwhile was a
    ValueError 500, one joining got a position the reorder then duplicated."""
    album = library.create_album(user, "Order")
    pictures = [library.move_picture_to_album(make_picture(user, title=f"p{i}"), album) for i in range(3)]  # positions 0, 1, 2
    for round_ in range(ROUNDS):
        leaving, joining = pictures[round_ % 3], make_picture(user, title=f"new {round_}")
        up = Picture.objects.select_related("album").get(pk=leaving.pk)
        moved_up, left, joined = race(
            lambda: library.move_picture_in_album(up, -1),
            lambda: library.move_picture_to_album(Picture.objects.get(pk=leaving.pk), None),
            lambda: library.move_picture_to_album(joining, album),
        )
        assert isinstance(moved_up, (tuple, InvalidInput)), moved_up  # (its new place, the album's size), or refused
        assert isinstance(left, Picture) and isinstance(joined, Picture), (left, joined)
        positions = list(album.pictures.values_list("position", flat=True))
        assert len(set(positions)) == len(positions), sorted(positions)
        library.move_picture_to_album(Picture.objects.get(pk=leaving.pk), album)  # back for the next round
