// Run once by mongo-ha-init (`docker compose --profile ha`): the replica set's other
// members, each added if it is not one yet and waited for until it is a secondary, one
// at a time (MongoDB changes one voting member per reconfiguration). From then on the
// services' writes (w=majority) are acknowledged by two of three members, and a primary
// that fails is replaced by an election. Signs in like init-replica-set.js: the password
// from the environment, never on the command line.
const adminPassword = process.env.MONGO_ADMIN_PASSWORD;
if (!adminPassword) throw new Error("MONGO_ADMIN_PASSWORD is not set");
const wanted = (process.env.MONGO_NEW_MEMBERS || "").split(",").map((host) => host.trim()).filter(Boolean);
if (wanted.length === 0) throw new Error("MONGO_NEW_MEMBERS is not set (host:port,host:port)");
db.getSiblingDB("admin").auth("admin", adminPassword);

const WAIT_SECONDS = 300;
function stateOf(host) {
  const member = rs.status().members.find((each) => each.name === host);
  return member ? member.stateStr : "absent";
}

for (const host of wanted) {
  if (!rs.conf().members.some((member) => member.host === host)) rs.add({ host: host });
  let waited = 0;
  while (!["PRIMARY", "SECONDARY"].includes(stateOf(host))) {
    if (++waited > WAIT_SECONDS) throw new Error(`${host} is not a secondary after ${WAIT_SECONDS} s: ${stateOf(host)}`);
    sleep(1000);
  }
}
print(`replica set ${rs.conf()._id}: ${rs.conf().members.map((member) => member.host).join(", ")}`);
