// MongoDB-wire-protocol server for local development and tests (`tsplatform services up`).
//
// Run as a single source file (Java 17+):
//   java -cp 'jars/mongo/*' MongoLauncher.java PORT [DATAFILE]
// Binds 127.0.0.1:PORT. With DATAFILE the H2 MVStore backend keeps the data in that file (committed
// every second and on shutdown); without it, or with "memory", data lives in memory only.
// It reports MongoDB 4.4 (wire version 9), the oldest PyMongo 4.x accepts (the library's own version
// constants report wire version <= 8). The oplog (change streams) stays off: nothing here watches a
// collection, and with the H2 backend it made every write 4-5x slower and grew the store with every
// update (10,000 upserts: 6.6 s with it, 1.3 s without). SIGTERM closes the store cleanly.

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class MongoLauncher {
    /** MongoDB 4.4, wire version 9: the oldest server PyMongo 4.x accepts. */
    static final MongoVersion MONGO_4_4 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: java -cp 'jars/mongo/*' MongoLauncher.java PORT [DATAFILE|memory]");
            System.exit(64);
        }
        int port = Integer.parseInt(args[0]);
        String dataFile = args.length == 2 ? args[1] : "memory";
        MongoBackend backend = "memory".equals(dataFile) ? new MemoryBackend() : new H2Backend(dataFile);
        // PyMongo 4.x requires wire version >= 9 (MongoDB 4.4); the built-in versions report at most 8.
        backend.version(MONGO_4_4);
        MongoServer server = new MongoServer(backend);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            stopped.countDown();
        }, "mongo-shutdown"));
        server.bind("127.0.0.1", port);
        System.out.println("MongoLauncher: listening on 127.0.0.1:" + port + " backend="
                + ("memory".equals(dataFile) ? "memory" : "h2:" + dataFile));
        System.out.flush();
        stopped.await();
    }
}
