-- Template: claim a batch of work so that concurrent runs split it instead of repeating it.
WITH claimed AS (
    SELECT q.id
      FROM platform.example_queue q
     WHERE q.state = 'pending'
     ORDER BY q.priority DESC, q.id
     LIMIT 100
       FOR UPDATE SKIP LOCKED
)
UPDATE platform.example_queue q
   SET state = 'claimed', claimed_at = now()
  FROM claimed c
 WHERE q.id = c.id
RETURNING q.id;
