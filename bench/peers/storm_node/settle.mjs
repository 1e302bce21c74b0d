// The settle detector of bench/storm.py's upvote storm, apart from the client so that it can be
// tested without a server or node_modules (tests/unit/test_bench_storm.py): how one client
// counts the votes of one question from the frames docs/protocol.md documents.

/** Apply one frame to a client's vote count of question `qid`. Two documented shapes:
 *  - `event` `question.upvoted` / `question.unvoted` with `data.question_id`: one vote, +1 / -1
 *    (every participant in small rooms, staff always, and a student's own votes in large rooms);
 *  - `tally{through, questions: [{question_id, votes}]}` (students in rooms above --large-room):
 *    the room's current count as of event `through`; vote events with ids up to `through` are
 *    included in it and were sent before it, those after it apply on top.
 *  Returns true when the count changed. */
export function applyVote(v, frame, qid) {
  if (frame.t === "tally") {
    if (typeof frame.through === "number" && frame.through > v.through) v.through = frame.through;
    for (const q of frame.questions || []) {
      if (q.question_id === qid && q.votes !== v.votes) {
        v.votes = q.votes;
        return true;
      }
    }
    return false;
  }
  const type = frame.type;
  if (type !== "question.upvoted" && type !== "question.unvoted") return false;
  if (frame.data?.question_id !== qid || frame.id <= v.through) return false;
  v.votes += type === "question.upvoted" ? 1 : -1;
  return true;
}
